"""The partner API as its own OpenAPI document, mounted at /api/v1/exchange/.

Partners get a document of their own (`/api/v1/exchange/openapi.json`, Swagger UI at
`/api/v1/exchange/docs`, served from our origin by django-ninja's static files): only partner
operations, operation ids a code generator can use, an `error` code in every error body, the
webhook (OpenAPI 3.1 `webhooks`) and `Retry-After` on 429. Staff operations stay in the main
document at /api/v1/openapi.json.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, Throttled, ValidationError

from anshim.exchange.api import router
from anshim.exchange.auth import PartnerAPIError

DESCRIPTION = """\
The partner platform exchange of an Anshim center: pull the fingerprints of the hash banks
shared with you (a change feed), look up hashes at upload time, and tell us what you did.

* Authentication: `Authorization: Bearer anx_…` (the token `anshim partner create` printed).
* Rate limit: a token bucket per partner (default 600 requests a minute, bursts of 60). A 429
  carries `Retry-After` (seconds); wait that long and retry.
* Errors: every error body is `{"error": <code>, "detail": <for people>}`; `error` is one of
  the `ErrorCode` values and never changes meaning.
* Webhooks: when the shared banks change we POST the next feed page to your webhook URL,
  signed (see `webhooks` and docs/partners.md).

The python-threatexchange adapter (`pip install anshim-threatexchange`) speaks this API for
the threatexchange CLI and hasher-matcher-actioner.
"""

class PartnerNinjaAPI(NinjaAPI):
    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> Any:
        return _with_webhooks(dict(super().get_openapi_schema(*args, **kwargs)))


partner_api = PartnerNinjaAPI(
    title="Anshim partner API",
    version="1",
    description=DESCRIPTION,
    urls_namespace="partner_api",
)

_STATUS_CODES = {400: "invalid_input", 401: "unauthorized", 403: "insufficient_scope",
                 404: "not_found", 422: "invalid_input", 429: "rate_limited"}


def _error(request: HttpRequest, status: int, code: str, detail: Any) -> HttpResponse:
    return partner_api.create_response(request, {"error": code, "detail": detail},
                                       status=status)


@partner_api.exception_handler(PartnerAPIError)
def partner_error(request: HttpRequest, exc: PartnerAPIError) -> HttpResponse:
    return _error(request, exc.status_code, exc.code, str(exc))


@partner_api.exception_handler(Throttled)
def throttled(request: HttpRequest, exc: Throttled) -> HttpResponse:
    # ninja adds Retry-After to this response.
    return _error(request, 429, "rate_limited",
                  "Too many requests: wait for the Retry-After seconds, then retry.")


@partner_api.exception_handler(HttpError)
def http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return _error(request, exc.status_code, _STATUS_CODES.get(exc.status_code, "invalid_input"),
                  str(exc))


@partner_api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    return _error(request, 422, "invalid_input", exc.errors)


@partner_api.exception_handler(AuthenticationError)
def authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return _error(request, 401, "unauthorized", "Missing or invalid credentials.")


@partner_api.exception_handler(RequestDataTooBig)
def too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return _error(request, 413, "payload_too_large",
                  "The request body is too large: send fewer hashes per request.")


@partner_api.exception_handler(Http404)
def not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return _error(request, 404, "not_found", "Not found.")


partner_api.add_router("/", router)


_SIGNED_HEADERS = {
    "X-Anshim-Timestamp": {
        "description": "Unix time of the delivery; refuse it when older than 5 minutes.",
        "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"}},
    "X-Anshim-Signature": {
        "description": "hex(HMAC-SHA256(webhook secret, timestamp + '.' + raw body)).",
        "required": True, "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
}


def _with_webhooks(schema: dict[str, Any]) -> dict[str, Any]:
    page_ref = {"$ref": "#/components/schemas/FeedPageOut"}
    schema["webhooks"] = {
        "fingerprintsChanged": {"post": {
            "operationId": "onFingerprintsChanged",
            "summary": "The banks shared with you changed",
            "description": (
                "The next page of your feed (the same items as GET /fingerprints) plus the "
                "cursor to continue from, `event` = `fingerprints.changed`. Verify the "
                "signature before trusting it (anshim_threatexchange.verify_webhook). Answer "
                "2xx; anything else is retried with exponential backoff (1, 2, 4 ... minutes, "
                "8 attempts)."),
            "parameters": [{"in": "header", "name": name, **spec}
                           for name, spec in _SIGNED_HEADERS.items()],
            "requestBody": {"required": True, "content": {"application/json": {"schema": {
                "allOf": [page_ref, {"type": "object", "required": ["event"], "properties": {
                    "event": {"type": "string", "enum": ["fingerprints.changed"]}}}]}}}},
            "responses": {"200": {"description": "Received."}},
        }},
    }
    retry_after = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                   "schema": {"type": "integer", "minimum": 1}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            answer = operation.get("responses", {}).get(429)
            if answer is None:
                answer = operation.get("responses", {}).get("429")
            if isinstance(answer, dict):
                answer["headers"] = retry_after
    return schema

