from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ReportsConfig(AppConfig):
    name = "anshim.reports"
    label = "reports"
    verbose_name = _("Dashboards and reports")

    def ready(self) -> None:
        from anshim.reports import signals

        signals.connect()


#: The staff navigation's link (security/templates/staff/_nav.html); Django merges every app's
#: catalog, so the link's translation lives with the app it leads to.
NAV_LABEL = _("Dashboard")
