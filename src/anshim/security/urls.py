from django.urls import path

from anshim.security import account_views, views

app_name = "staff"
urlpatterns = [
    path("", views.home_view, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("otp/", views.otp_view, name="otp"),
    path("otp/setup/", views.otp_setup_view, name="otp_setup"),
    path("otp/backup-codes/", views.backup_codes_view, name="backup_codes"),
    path("password/", account_views.password_change_view, name="password_change"),
    path("recover/<str:token>/", account_views.recover_view, name="recover"),
    path("accounts/", account_views.accounts_view, name="accounts"),
    path("accounts/<int:pk>/", account_views.account_view, name="account"),
    path("accounts/<int:pk>/role/", account_views.propose_role_view, name="account_role"),
    path("accounts/<int:pk>/recovery/", account_views.propose_recovery_view,
         name="account_recovery"),
    path("accounts/requests/<int:pk>/approve/", account_views.approve_view,
         name="account_approve"),
    path("accounts/requests/<int:pk>/reject/", account_views.reject_view,
         name="account_reject"),
    path("accounts/requests/<int:pk>/cancel/", account_views.cancel_view,
         name="account_cancel"),
]
