"""URLs for the busy-database tests: views that meet a locked database."""

from __future__ import annotations

from django.db import IntegrityError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.urls import path


def locked(request: HttpRequest) -> HttpResponse:
    raise OperationalError("database is locked")


def broken(request: HttpRequest) -> HttpResponse:
    raise IntegrityError("a real bug")


urlpatterns = [
    path("staff/locked/", locked),
    path("api/v1/locked/", locked),
    path("staff/broken/", broken),
]
