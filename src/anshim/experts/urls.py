from django.urls import path

from anshim.experts import views

app_name = "experts"
urlpatterns = [
    path("", views.expert_list, name="list"),
    path("my/", views.my_assignments, name="my"),
    path("<int:pk>/", views.expert_detail, name="detail"),
    path("<int:pk>/edit/", views.expert_edit, name="edit"),
    path("assign/<str:case_code>/", views.assign, name="assign"),
    path("assignments/<int:pk>/", views.assignment_detail, name="assignment"),
    path("assignments/<int:pk>/end/", views.assignment_end, name="end"),
    path("assignments/<int:pk>/book/", views.book, name="book"),
    path("assignments/<int:pk>/held/", views.record_held, name="held"),
    path("appointments/<int:pk>/move/", views.reschedule, name="reschedule"),
    path("appointments/<int:pk>/cancel/", views.cancel, name="cancel"),
    path("appointments/<int:pk>/outcome/", views.outcome, name="outcome"),
    path("appointments/<int:pk>/log/", views.session_log, name="log"),
]
