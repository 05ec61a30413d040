from django.urls import path

from anshim.reports import views

app_name = "reports"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("annual/", views.annual, name="annual"),
    path("monthly/", views.monthly, name="monthly"),
]
