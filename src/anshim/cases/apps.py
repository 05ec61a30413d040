from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "anshim.cases"
    label = "cases"

    def ready(self) -> None:
        # An invalid ANSHIM_CASE_WORKFLOW stops the start with a message saying what is wrong,
        # instead of stranding cases in a status they can never leave.
        from anshim.cases.workflow import check_configured

        check_configured()
