"""Staff pages of the erasure app (none yet: banks are managed through commands and admin)."""

from django.urls import URLPattern

app_name = "erasure"
urlpatterns: list[URLPattern] = []
