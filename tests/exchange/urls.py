"""Only the API: exchange tests must not depend on the staff and portal URL modules."""

from django.urls import path

from anshim.config.api import api

urlpatterns = [path("api/v1/", api.urls)]
