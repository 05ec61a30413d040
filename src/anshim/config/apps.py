from django.apps import AppConfig


class ConfigConfig(AppConfig):
    """Holds the project-wide management commands (`anshim demo`, `anshim hash`, ...)."""

    name = "anshim.config"
    label = "anshim_config"
