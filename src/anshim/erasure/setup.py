"""Set-up of the erasure workflow from the staff pages: platforms (where notices go) and
monitored sources (where scans look). Forms validate; `save_config` writes in its own durable
transaction with the row locked and audits which fields changed (names only, no values)."""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext_lazy as _

from anshim.cases.services import audit
from anshim.erasure.models import MonitoredSource, Platform, TakedownChannel
from anshim.security.policy import Action, require

PLATFORM_SAVED = "erasure.platform.saved"
SOURCE_SAVED = "erasure.source.saved"
_HOST_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*"
                      r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
MAX_DEPTH = 5
MIN_EVERY_MINUTES = 15


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def clean_hosts(text: str, *, allow_ip: bool = False) -> str:
    """One host name per line, lowercased and de-duplicated (ValidationError naming the bad
    line otherwise). A pasted URL is reduced to its host."""
    hosts: list[str] = []
    for raw in text.split():
        value = raw.strip().lower()
        if "://" in value:
            value = urlsplit(value).hostname or ""
        value = value.lstrip(".").rstrip(".")
        if not (_HOST_RE.match(value) or (allow_ip and _is_ip(value))):
            raise ValidationError(_("“%(value)s” is not a host name."), code="bad_host",
                                  params={"value": raw[:100]})
        if value not in hosts:
            hosts.append(value)
    return "\n".join(hosts)


def clean_urls(text: str) -> str:
    urls: list[str] = []
    validate = forms.URLField().clean
    for raw in text.split():
        parts = urlsplit(raw.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValidationError(_("“%(value)s” is not an http(s) address."), code="bad_url",
                                  params={"value": raw[:100]})
        validate(raw.strip())
        if raw.strip() not in urls:
            urls.append(raw.strip())
    if not urls:
        raise ValidationError(_("Give at least one start address."), code="no_seeds")
    return "\n".join(urls)


class PlatformForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Platform
        fields = ["name", "domains", "kind", "jurisdiction", "channel", "contact_email",
                  "form_url", "webhook_url", "expected_response_hours", "notice_language",
                  "legal_basis", "notice_template_ko", "notice_template_en"]
        widgets = {"domains": forms.Textarea(attrs={"rows": 3}),
                   "legal_basis": forms.Textarea(attrs={"rows": 2}),
                   "notice_template_ko": forms.Textarea(attrs={"rows": 4}),
                   "notice_template_en": forms.Textarea(attrs={"rows": 4})}

    def clean_domains(self) -> str:
        hosts = clean_hosts(self.cleaned_data["domains"])
        if not hosts:
            raise ValidationError(_("Give at least one domain."), code="no_domains")
        return hosts

    def clean_expected_response_hours(self) -> int:
        hours = int(self.cleaned_data["expected_response_hours"])
        if not 1 <= hours <= 24 * 30:
            raise ValidationError(_("Between 1 hour and 30 days."), code="bad_hours")
        return hours

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        channel = data.get("channel")
        needed = {TakedownChannel.EMAIL: ("contact_email", _("An e-mail channel needs the "
                                                            "takedown e-mail address.")),
                  TakedownChannel.WEB_FORM: ("form_url", _("A web-form channel needs the "
                                                           "form's address.")),
                  TakedownChannel.PARTNER_API: ("webhook_url", _("A partner API channel needs "
                                                                 "the webhook address."))}
        if channel in needed:
            field, message = needed[TakedownChannel(channel)]
            if not data.get(field):
                self.add_error(field, message)
        return data


class SourceForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = MonitoredSource
        fields = ["name", "seeds", "allowed_domains", "depth", "every_minutes", "enabled",
                  "per_host_rate", "per_host_concurrency", "allowed_private_hosts"]
        widgets = {"seeds": forms.Textarea(attrs={"rows": 3}),
                   "allowed_domains": forms.Textarea(attrs={"rows": 2}),
                   "allowed_private_hosts": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"allowed_domains": _("One host name per line; empty: the seeds' hosts."),
                      "every_minutes": _("1440 = once a day.")}

    def clean_seeds(self) -> str:
        return clean_urls(self.cleaned_data["seeds"])

    def clean_allowed_domains(self) -> str:
        return clean_hosts(self.cleaned_data["allowed_domains"])

    def clean_allowed_private_hosts(self) -> str:
        return clean_hosts(self.cleaned_data["allowed_private_hosts"], allow_ip=True)

    def clean_depth(self) -> int:
        depth = int(self.cleaned_data["depth"])
        if depth > MAX_DEPTH:
            raise ValidationError(_("At most %(n)d links deep."), code="too_deep",
                                  params={"n": MAX_DEPTH})
        return depth

    def clean_every_minutes(self) -> int:
        minutes = int(self.cleaned_data["every_minutes"])
        if minutes < MIN_EVERY_MINUTES:
            raise ValidationError(_("At least every %(n)d minutes."), code="too_often",
                                  params={"n": MIN_EVERY_MINUTES})
        return minutes

    def clean_per_host_rate(self) -> float:
        rate = float(self.cleaned_data["per_host_rate"])
        if not 0.1 <= rate <= 10:
            raise ValidationError(_("Between 0.1 and 10 requests per second."), code="bad_rate")
        return rate

    def clean_per_host_concurrency(self) -> int:
        n = int(self.cleaned_data["per_host_concurrency"])
        if not 1 <= n <= 8:
            raise ValidationError(_("Between 1 and 8."), code="bad_concurrency")
        return n


def save_config(form: PlatformForm | SourceForm, *, actor: Any, request: Any = None,
                ) -> Platform | MonitoredSource:
    """Save a valid form in its own transaction; a changed row is locked and audited (the
    changed field names as the reason). A name taken meanwhile is a form error, not a 500."""
    require(actor, Action.CONFIGURE_ERASURE)
    model = form._meta.model
    action = PLATFORM_SAVED if model is Platform else SOURCE_SAVED
    changed = sorted(form.changed_data)
    try:
        with transaction.atomic(durable=True):
            if form.instance.pk is not None:
                model.objects.select_for_update().get(pk=form.instance.pk)
            obj = form.save()
            audit(actor=actor, action=action, target=obj, request=request,
                  reason=",".join(changed)[:200] or "unchanged")
    except IntegrityError:
        form.add_error("name", _("This name is already taken."))
        raise ValidationError(_("This name is already taken."), code="name_taken") from None
    return obj
