from django.contrib import admin
from django.urls import include, path

from anshim.config.api import api
from anshim.exchange.partner_api import partner_api

urlpatterns = [
    path("", include("anshim.portal.urls")),
    path("", include("anshim.prevention.public_urls")),  # /schools/request/, /s/<code>/
    path("staff/", include("anshim.security.urls")),
    path("staff/cases/", include("anshim.cases.urls")),
    path("staff/experts/", include("anshim.experts.urls")),
    path("staff/erasure/", include("anshim.erasure.urls")),
    path("staff/prevention/", include("anshim.prevention.urls")),
    path("staff/reports/", include("anshim.reports.urls")),
    path("statistics/", include("anshim.reports.public_urls")),
    path("staff/admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    # The partner API is its own OpenAPI document (/api/v1/exchange/openapi.json).
    path("api/v1/exchange/", partner_api.urls),
    path("api/v1/", api.urls),
]

# Styled, translated error pages with a way back (never a bare English "403 Forbidden").
handler403 = "anshim.security.errors.permission_denied"
handler404 = "anshim.security.errors.page_not_found"
handler500 = "anshim.security.errors.server_error"
