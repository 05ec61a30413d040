"""Public routes: the schools' booking form and the students' class survey."""

from django.urls import path

from anshim.prevention import public

app_name = "survey"
urlpatterns = [
    path("schools/request/", public.booking_request, name="booking"),
    path("schools/request/done/", public.booking_done, name="booking_done"),
    path("s/", public.enter_code, name="enter"),
    path("s/help/", public.help_request, name="help"),
    path("s/<str:code>/", public.answer, name="answer"),
    path("s/<str:code>/submit/", public.submit, name="submit"),
]
