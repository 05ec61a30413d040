from django.contrib import admin
from django.urls import include, path

from anshim.config.api import api

urlpatterns = [
    path("", include("anshim.portal.urls")),
    path("staff/", include("anshim.security.urls")),
    path("staff/cases/", include("anshim.cases.urls")),
    path("staff/experts/", include("anshim.experts.urls")),
    path("staff/erasure/", include("anshim.erasure.urls")),
    path("staff/admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("api/v1/", api.urls),
]
