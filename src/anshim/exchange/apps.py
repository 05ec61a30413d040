from django.apps import AppConfig


class ExchangeConfig(AppConfig):
    name = "anshim.exchange"
    label = "exchange"

    def ready(self) -> None:
        from anshim.exchange import signals

        signals.connect()
