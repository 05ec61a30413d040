"""Forms of the erasure staff pages."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from anshim.erasure.models import NoticeLanguage, TakedownState


class ReviewForm(forms.Form):
    decision = forms.ChoiceField(choices=[("confirm", _("Confirm")), ("reject", _("Reject"))])
    #: the copy carries the victim's personal information (the annual co-leak table)
    leaks_personal_info = forms.BooleanField(required=False,
                                             label=_("Personal information leaked with it"))


class DraftForm(forms.Form):
    language = forms.ChoiceField(label=_("Notice language"), required=False,
                                 choices=[("", _("Platform default")), *NoticeLanguage.choices])


class ResponseForm(forms.Form):
    state = forms.ChoiceField(label=_("Platform answer"), choices=[
        (TakedownState.ACKNOWLEDGED, TakedownState.ACKNOWLEDGED.label),
        (TakedownState.REMOVED, TakedownState.REMOVED.label),
        (TakedownState.REFUSED, TakedownState.REFUSED.label),
        (TakedownState.ESCALATED, TakedownState.ESCALATED.label),
    ])
    note = forms.CharField(label=_("Note"), max_length=300, required=False)


class NoticeEditForm(forms.Form):
    subject = forms.CharField(label=_("Subject"), max_length=300)
    body = forms.CharField(label=_("Text"), max_length=20_000,
                           widget=forms.Textarea(attrs={"rows": 24, "cols": 90}))


class RequestFilterForm(forms.Form):
    """Find requests on the erasure page, finished ones included."""

    show = forms.ChoiceField(label=_("Requests"), required=False, choices=[
        ("", _("All requests")), ("open", _("In progress")), ("finished", _("Finished"))])
    case = forms.CharField(label=_("Case code"), max_length=16, required=False)
