from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PreventionConfig(AppConfig):
    name = "anshim.prevention"
    label = "prevention"
    verbose_name = _("Prevention")

    def ready(self) -> None:
        from anshim.prevention import stamp

        # The analyses' cache is only as good as this: every change to their inputs renews
        # the stamp (writes that send no signals renew it themselves).
        stamp.connect()
