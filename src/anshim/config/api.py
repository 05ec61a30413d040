"""The JSON API: one django-ninja instance; each app contributes a router.

OpenAPI is served at /api/v1/openapi.json and the interactive docs at /api/v1/docs. The
partner exchange has a document of its own (anshim.exchange.partner_api, /api/v1/exchange/).
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, ValidationError

from anshim.cases.api import router as cases_router
from anshim.experts.api import router as experts_router

api = NinjaAPI(
    title="Anshim API",
    version="1",
    description="Staff case management. The partner platform exchange is documented "
                "separately at /api/v1/exchange/openapi.json.",
    urls_namespace="api",
)


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return api.create_response(
        request, {"error": "invalid_input", "detail": exc.errors}, status=422
    )


@api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return api.create_response(
        request, {"error": "unauthorized", "detail": "Missing or invalid credentials."}, status=401
    )


api.add_router("/cases", cases_router)
api.add_router("/experts", experts_router)
