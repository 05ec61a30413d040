from django.apps import AppConfig


class CasesConfig(AppConfig):
    name = "anshim.cases"
    label = "cases"
