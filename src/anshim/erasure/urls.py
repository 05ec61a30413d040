"""Staff pages of the erasure workflow (banks are managed through commands and admin)."""

from django.urls import path

from anshim.erasure import views

app_name = "erasure"
urlpatterns = [
    path("", views.index, name="index"),
    path("sightings/<int:pk>/review/", views.review, name="review"),
    path("sightings/<int:pk>/preview.png", views.preview, name="preview"),
    path("sightings/<int:pk>/unblur/", views.unblur, name="unblur"),
    path("cases/<str:code>/draft/", views.draft, name="draft"),
    path("requests/<int:pk>/", views.request_detail, name="request"),
    path("requests/<int:pk>/edit/", views.edit, name="edit"),
    path("requests/<int:pk>/approve/", views.approve, name="approve"),
    path("requests/<int:pk>/respond/", views.respond, name="respond"),
]
