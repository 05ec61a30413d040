from django.apps import AppConfig


class ExpertsConfig(AppConfig):
    name = "anshim.experts"
    label = "experts"
