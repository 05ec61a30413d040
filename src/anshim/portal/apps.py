from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "anshim.portal"
    label = "portal"
