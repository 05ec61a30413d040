"""Staff pages of the erasure workflow (banks are managed through commands)."""

from django.urls import path

from anshim.erasure import views, views_device, views_scan, views_setup

app_name = "erasure"
urlpatterns = [
    path("", views.index, name="index"),
    path("platforms/", views_setup.platforms, name="platforms"),
    path("platforms/new/", views_setup.platform_edit, name="platform_new"),
    path("platforms/<int:pk>/", views_setup.platform_edit, name="platform"),
    path("sources/", views_setup.sources, name="sources"),
    path("sources/new/", views_setup.source_edit, name="source_new"),
    path("sources/<int:pk>/", views_setup.source_edit, name="source"),
    path("sources/<int:pk>/scan/", views_scan.scan_source, name="scan_source"),
    path("scans/<int:pk>/", views_scan.scan, name="scan"),
    path("cases/<str:code>/", views_scan.case_erasure, name="case"),
    path("cases/<str:code>/scan/", views_scan.scan_case, name="scan_case"),
    path("cases/<str:code>/register/", views_device.register_page, name="register"),
    path("cases/<str:code>/register/fingerprints/", views_device.register_fingerprints,
         name="register_fingerprints"),
    path("sightings/", views.sighting_list, name="sightings"),
    path("sightings/<int:pk>/review/", views.review, name="review"),
    path("sightings/<int:pk>/preview.png", views.preview, name="preview"),
    path("sightings/<int:pk>/unblur/", views.unblur, name="unblur"),
    path("unblurred/<int:pk>/viewed/", views.unblur_viewed, name="unblur_viewed"),
    path("cases/<str:code>/draft/", views.draft, name="draft"),
    path("requests/<int:pk>/", views.request_detail, name="request"),
    path("requests/<int:pk>/edit/", views.edit, name="edit"),
    path("requests/<int:pk>/approve/", views.approve, name="approve"),
    path("requests/<int:pk>/respond/", views.respond, name="respond"),
]
