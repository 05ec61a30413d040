from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "anshim.exchange"
    label = "exchange"
