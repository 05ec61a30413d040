"""Portal forms: every field says plainly what it is for, and bad input gets a clear message."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import AgeGroup, ContactPreference, HarmType

MAX_URLS = 20
_PHONE = re.compile(r"\A\+?[0-9 ()-]{7,20}\Z")


class ReportForm(forms.Form):
    harm_types = forms.MultipleChoiceField(
        label=_("What happened?"), choices=HarmType.choices, widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("Choose at least one thing that happened.")},
    )
    in_danger = forms.ChoiceField(
        label=_("Are you in danger right now?"),
        choices=[("no", _("No")), ("yes", _("Yes")), ("unsure", _("I am not sure"))],
        widget=forms.RadioSelect, initial="no",
    )
    content_spreading = forms.BooleanField(
        label=_("The pictures or videos are already online or being shared"), required=False
    )
    threatened = forms.BooleanField(
        label=_("Someone is threatening to share them or asking for something"), required=False
    )
    meeting_planned = forms.BooleanField(
        label=_("Someone wants to meet me offline"), required=False
    )
    urls = forms.CharField(
        label=_("Where is the content? (optional, one web address per line)"),
        required=False, widget=forms.Textarea(attrs={"rows": 3}), max_length=4000,
    )
    platforms = forms.CharField(
        label=_("Which apps or sites? (optional)"), required=False, max_length=300
    )
    age_group = forms.ChoiceField(
        label=_("How old are you?"), choices=AgeGroup.choices, widget=forms.RadioSelect,
        initial=AgeGroup.UNKNOWN,
    )
    summary = forms.CharField(
        label=_("Tell us more if you want (optional)"), required=False,
        widget=forms.Textarea(attrs={"rows": 4}), max_length=5000,
    )
    contact_preference = forms.ChoiceField(
        label=_("May we contact you? How?"), choices=ContactPreference.choices,
        widget=forms.RadioSelect, initial=ContactPreference.PORTAL,
    )
    contact_detail = forms.CharField(
        label=_("Phone number or e-mail (only if you want us to contact you)"),
        required=False, max_length=200,
    )
    consent_keep_data = forms.BooleanField(
        label=_("You may keep what I write here to help me"),
        error_messages={"required": _("We need your permission to keep your report.")},
    )
    consent_contact_platforms = forms.BooleanField(
        label=_("You may ask sites and apps to delete the content"), required=False
    )

    def clean_urls(self) -> list[str]:
        lines = [line.strip() for line in self.cleaned_data["urls"].splitlines() if line.strip()]
        if len(lines) > MAX_URLS:
            raise forms.ValidationError(
                _("Please give at most %(n)d addresses."), params={"n": MAX_URLS}
            )
        for line in lines:
            parts = urlsplit(line)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise forms.ValidationError(
                    _("“%(url)s” is not a web address (it should start with https://)."),
                    params={"url": line[:80]},
                )
        return lines

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        pref = data.get("contact_preference")
        detail = (data.get("contact_detail") or "").strip()
        needs_detail = (ContactPreference.PHONE, ContactPreference.SMS, ContactPreference.EMAIL)
        if pref in needs_detail and not detail:
            self.add_error(
                "contact_detail", _("Give a phone number or e-mail, or choose another way.")
            )
        if pref == ContactPreference.EMAIL and detail and "@" not in detail:
            self.add_error("contact_detail", _("This does not look like an e-mail address."))
        if pref in (ContactPreference.PHONE, ContactPreference.SMS) and detail \
                and not _PHONE.match(detail):
            self.add_error("contact_detail", _("This does not look like a phone number."))
        return data


class SignInForm(forms.Form):
    # autocomplete off: a shared phone must not remember a child's case code or passphrase.
    code = forms.CharField(
        label=_("Case code"), max_length=20,
        help_text=_("It looks like AN-XXXX-XX."),
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters",
                                      "spellcheck": "false"}),
    )
    passphrase = forms.CharField(
        label=_("Passphrase"), max_length=40,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


class MessageForm(forms.Form):
    body = forms.CharField(
        label=_("Message to your counselor"), max_length=2000,
        widget=forms.Textarea(attrs={"rows": 4}),
    )
