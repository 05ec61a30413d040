"""Background task: e-mail the counselors that a victim wrote through the portal.

The e-mail carries the case code and a link, never the message or any personal data: the
counselor reads the message after signing in (where the read is audited).
"""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMessage
from django.tasks import task
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from anshim.portal.models import PortalMessage


@task()
def send_message_notice(message_id: int) -> str:
    """Mail the recipients of a victim's message, once.

    Idempotent: the notice is claimed with a conditional update of `notice_sent_at`, so a
    retried or duplicated task never mails twice; a failure to send releases the claim."""
    from anshim.portal.services import message_recipients

    claimed = PortalMessage.objects.filter(
        pk=message_id, from_victim=True, notice_sent_at__isnull=True,
    ).update(notice_sent_at=timezone.now())
    if not claimed:
        return "skipped"
    msg = PortalMessage.objects.select_related("case").get(pk=message_id)
    sent = 0
    try:
        for user in message_recipients(msg.case):
            if not user.email:
                continue
            with translation.override(user.preferred_language or settings.LANGUAGE_CODE):
                subject = _("Anshim: new portal message on case %(code)s") % {
                    "code": msg.case.code}
                body = _(
                    "The victim of case %(code)s wrote to the center through the portal.\n\n"
                    "Please sign in to Anshim to read and answer it:\n%(link)s"
                ) % {"code": msg.case.code, "link": _site_url(
                    f"/staff/cases/{msg.case.code}/#messages")}
            EmailMessage(subject, body, to=[user.email]).send()
            sent += 1
    except Exception:
        PortalMessage.objects.filter(pk=message_id).update(notice_sent_at=None)
        raise
    return f"sent {sent}"


def _site_url(path: str) -> str:
    return getattr(settings, "ANSHIM_SITE_URL", "").rstrip("/") + path
