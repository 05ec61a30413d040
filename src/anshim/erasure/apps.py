from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "anshim.erasure"
    label = "erasure"
