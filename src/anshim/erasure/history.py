"""A takedown request's history in words: each `TakedownEvent` as a sentence in the reader's
language, from its states and reason code (the stored note is detail, not the sentence)."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from anshim.erasure.models import TakedownEvent, TakedownState

S = TakedownState

#: Sentences by reason code (`takedowns.Why`, or "delivery_<result>").
_BY_WHY = {
    "drafted": gettext_lazy("Drafted the notice."),
    "edited": gettext_lazy("Edited the notice's wording."),
    "approved": gettext_lazy("Approved the notice; it is being sent."),
    "resent": gettext_lazy("No answer yet: the notice is being sent again."),
    "deadline_passed": gettext_lazy("The platform did not answer by the deadline."),
    "still_online_past_deadline": gettext_lazy(
        "The content was still online after the deadline."),
    "escalated": gettext_lazy("Escalated the request."),
    "all_urls_gone": gettext_lazy("Every URL of the request is gone: the content was removed."),
    "partner_feedback": gettext_lazy("The partner platform reported what it did."),
    "consent_withdrawn": gettext_lazy(
        "Stopped: the victim withdrew the consent to contact platforms."),
    "delivery_delivered": gettext_lazy("The notice was delivered."),
    "delivery_retrying": gettext_lazy("The notice could not be delivered; it will be tried "
                                      "again."),
    "delivery_failed": gettext_lazy("The notice could not be delivered; no more attempts."),
}
#: The platform's answers, recorded by a specialist.
_BY_STATE = {
    S.ACKNOWLEDGED: gettext_lazy("The platform acknowledged the request."),
    S.REMOVED: gettext_lazy("The platform removed the content."),
    S.REFUSED: gettext_lazy("The platform refused the request."),
    S.ESCALATED: gettext_lazy("Escalated the request."),
    S.NO_RESPONSE: gettext_lazy("The platform did not answer by the deadline."),
}
#: Reasons whose note a person typed (the platform's answer): shown as the note; other notes
#: are technical detail (a delivery error) shown after the sentence.
_TYPED_NOTE = frozenset({"platform_answer", "escalated"})


@dataclass(frozen=True)
class HistoryLine:
    at: object
    who: str
    text: str
    change: str  # "draft → sent" in words, "" when the state stayed
    note: str
    typed: bool


def _who(event: TakedownEvent) -> str:
    if event.actor is None:
        return _("Anshim (automatic)")
    return str(event.actor)  # the display name, else the username


def describe(event: TakedownEvent) -> str:
    if event.why == "platform_answer" or (not event.why and event.to_state in _BY_STATE
                                          and event.from_state != event.to_state):
        return str(_BY_STATE.get(S(event.to_state), _("The request changed state.")))
    if event.why in _BY_WHY:
        return str(_BY_WHY[event.why])
    # Events from before reason codes were stored: the states alone.
    if event.from_state == event.to_state:
        return _("Sending the notice.")
    return str(_BY_STATE.get(S(event.to_state), _("The request changed state.")))


def history(events: list[TakedownEvent]) -> list[HistoryLine]:
    """The lines of the history page (events with `actor` selected)."""
    lines = []
    for e in events:
        change = ""
        if e.from_state != e.to_state:
            change = (f"{S(e.from_state).label} → {S(e.to_state).label}" if e.from_state
                      else str(S(e.to_state).label))
        typed = e.why in _TYPED_NOTE
        # System notes are technical and in English: only a delivery error is worth showing.
        shown = typed or e.why in ("delivery_retrying", "delivery_failed")
        lines.append(HistoryLine(at=e.at, who=_who(e), text=describe(e), change=change,
                                 note=e.note if shown else "", typed=typed))
    return lines
