from django.urls import path

from anshim.portal import views

app_name = "portal"
urlpatterns = [
    path("", views.start, name="start"),
    path("report/", views.report, name="report"),
    path("status/sign-in/", views.sign_in, name="sign_in"),
    path("status/sign-out/", views.sign_out, name="sign_out"),
    path("status/", views.status, name="status"),
    path("status/message/", views.send_message, name="message"),
    path("status/fingerprint/", views.fingerprint, name="fingerprint"),
    path("status/fingerprint/register/", views.register_fingerprints, name="register"),
    path("status/withdraw/", views.withdraw, name="withdraw"),
]
