from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConfigConfig(AppConfig):
    """Holds the project-wide management commands (`anshim demo`, `anshim hash`, ...)."""

    name = "anshim.config"
    label = "anshim_config"
    verbose_name = _("Configuration")
