from django.urls import path

from anshim.prevention import views

app_name = "prevention"
urlpatterns = [
    path("", views.home, name="home"),
    path("schools/", views.schools, name="schools"),
    path("programmes/", views.modules, name="modules"),
    path("facilitators/", views.facilitators, name="facilitators"),
    path("<str:kind>/<int:pk>/edit/", views.edit_record, name="edit"),
    path("bookings/", views.bookings, name="bookings"),
    path("bookings/<int:pk>/", views.booking, name="booking"),
    path("sessions/", views.sessions, name="sessions"),
    path("sessions/<int:pk>/", views.session, name="session"),
    path("tests/", views.tests, name="tests"),
    path("tests/<int:pk>/", views.test, name="test"),
    path("surveys/", views.surveys, name="surveys"),
    path("surveys/<int:pk>/", views.survey, name="survey"),
    path("surveys/<int:pk>/v<int:number>/preview/", views.preview, name="preview"),
    path("surveys/<int:pk>/v<int:number>/xlsform/", views.xlsform_download, name="xlsform"),
    path("surveys/<int:pk>/design/", views.design, name="design"),
    path("surveys/<int:pk>/results/", views.results, name="results"),
    path("surveys/<int:pk>/results.csv", views.results_table, name="results_table"),
    path("surveys/<int:pk>/export/", views.export, name="export"),
    path("classes/<int:pk>/", views.class_session, name="class_session"),
    path("classes/<int:pk>/count/", views.class_count, name="class_count"),
    path("help-requests/", views.help_requests, name="help_requests"),
]
