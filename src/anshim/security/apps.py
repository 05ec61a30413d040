from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "anshim.security"
    label = "security"
