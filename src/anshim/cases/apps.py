from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CasesConfig(AppConfig):
    name = "anshim.cases"
    label = "cases"
    verbose_name = _("Cases")

    def ready(self) -> None:
        # An invalid ANSHIM_CASE_WORKFLOW stops the start with a message saying what is wrong,
        # instead of stranding cases in a status they can never leave.
        from anshim.cases.workflow import check_configured

        check_configured()
