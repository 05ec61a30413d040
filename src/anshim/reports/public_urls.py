from django.urls import path

from anshim.reports import views

app_name = "statistics"

urlpatterns = [path("", views.statistics, name="statistics")]
