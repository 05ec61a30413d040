from django.urls import path

from anshim.cases import views, views_status
from anshim.portal import staff_views as portal_staff

app_name = "cases"
urlpatterns = [
    path("", views.case_list, name="list"),
    path("new/", views.intake, name="intake"),
    path("inbox/", views.inbox, name="inbox"),
    path("closures/", views_status.closure_queue, name="closure_queue"),
    path("<str:code>/", views.case_detail, name="detail"),
    path("<str:code>/edit/", views.case_edit, name="edit"),
    path("<str:code>/status/", views_status.status_move, name="status_move"),
    path("<str:code>/closure/", views_status.closure_decide, name="closure_decide"),
    path("<str:code>/contacts/", views.contact_add, name="contact_add"),
    path("<str:code>/notes/", views.note_add, name="note_add"),
    path("<str:code>/triage/", views.triage_reassess, name="reassess"),
    path("<str:code>/triage/override/", views.triage_override, name="override"),
    path("<str:code>/consent/", views.consent_change, name="consent"),
    path("<str:code>/messages/", views.message_reply, name="message_reply"),
    path("<str:code>/portal-passphrase/", portal_staff.portal_access, name="portal_passphrase"),
    path("<str:code>/referrals/", views.referral_add, name="referral_add"),
    path("<str:code>/referrals/<int:referral_id>/", views.referral_update, name="referral_update"),
]
