from django.urls import path

app_name = "experts"
urlpatterns: list = []
