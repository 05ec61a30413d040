from django.urls import path

app_name = "erasure"
urlpatterns: list = []
