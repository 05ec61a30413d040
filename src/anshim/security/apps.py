from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "anshim.security"
    label = "security"

    def ready(self) -> None:
        # Registers the `check --deploy` check of the production settings.
        from anshim.security import startup  # noqa: F401
