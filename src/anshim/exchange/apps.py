from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExchangeConfig(AppConfig):
    name = "anshim.exchange"
    label = "exchange"
    verbose_name = _("Hash exchange")

    def ready(self) -> None:
        from anshim.exchange import signals

        signals.connect()
