"""Only the APIs: exchange tests must not depend on the staff and portal URL modules."""

from django.urls import path

from anshim.config.api import api
from anshim.exchange.partner_api import partner_api

urlpatterns = [path("api/v1/exchange/", partner_api.urls), path("api/v1/", api.urls)]
