from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SecurityConfig(AppConfig):
    name = "anshim.security"
    label = "security"
    verbose_name = _("Staff and security")

    def ready(self) -> None:
        # Registers the `check --deploy` check of the production settings.
        from anshim.security import startup  # noqa: F401
