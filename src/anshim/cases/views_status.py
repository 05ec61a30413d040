"""Staff views of the case workflow: the status panel on the case page, the moves, the
supervisors' queue of closure requests and their decisions. Thin: the policy decides, the
actions in `anshim.cases.transitions` act."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import OuterRef, Prefetch, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from anshim.cases import transitions
from anshim.cases.models import Case, CaseStatus, StatusChange, StatusChangeKind
from anshim.security.audit import record as audit_record
from anshim.security.decorators import staff_required
from anshim.security.policy import Action, can, require

QUEUE_PAGE_SIZE = 25
# Audit event type of a look at the closure queue (it lists case codes and who asked).
CLOSURE_QUEUE_VIEW = "case.closure_queue_view"


class MoveForm(forms.Form):
    to = forms.ChoiceField(choices=CaseStatus.choices)
    # The status the user saw: a move from any other is stale (someone moved it meanwhile).
    expected = forms.ChoiceField(choices=CaseStatus.choices)
    reason = forms.CharField(label=gettext_lazy("Reason"), required=False,
                             max_length=transitions.REASON_MAX,
                             widget=forms.Textarea(attrs={"rows": 3}))
    confirmed = forms.BooleanField(required=False)


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("approve", "approve"), ("reject", "reject")])
    reason = forms.CharField(label=gettext_lazy("Reason"), required=False,
                             max_length=transitions.REASON_MAX,
                             widget=forms.Textarea(attrs={"rows": 3}))
    confirmed = forms.BooleanField(required=False)


@dataclass(frozen=True)
class StatusPanel:
    """What the case page shows about the status: the moves offered and a pending closure."""

    moves: list[transitions.NextMove]
    pending: transitions.ClosureRequest | None
    can_move: bool
    can_decide: bool
    show_note: bool


def status_panel(user: Any, case: Case, allowed: set[str]) -> StatusPanel:
    can_move = Action.MOVE_CASE_STATUS.value in allowed
    pending = transitions.pending_closure(case)
    return StatusPanel(
        moves=transitions.next_moves(case) if can_move else [], pending=pending,
        can_move=can_move, can_decide=Action.APPROVE_CASE_CLOSURE.value in allowed,
        # The closure note is typed by staff and may name people.
        show_note=Action.VIEW_PERSONAL_DATA.value in allowed,
    )


def _case(request: HttpRequest, code: str, action: Action) -> Case:
    case = get_object_or_404(Case.objects.select_related("person", "lead_counselor"),
                             code=code.upper())
    require(request.user, action, case)
    return case


def _confirm(request: HttpRequest, case: Case, form: forms.Form, *, title: str, button: str,
             reason_label: str, reason_required: bool, hidden: dict[str, str],
             action_url: str, status: int = 200) -> HttpResponse:
    return render(request, "cases/status_confirm.html", {
        "case": case, "form": form, "title": title, "button": button,
        "reason_label": reason_label, "reason_required": reason_required, "hidden": hidden,
        "action_url": action_url,
    }, status=status)


def _refused(request: HttpRequest, case: Case, text: str, status: int) -> HttpResponse:
    from anshim.cases.views import _render_detail

    messages.error(request, text)
    return _render_detail(request, case, status)


@staff_required()
@require_POST
def status_move(request: HttpRequest, code: str) -> HttpResponse:
    """A move button on the case page. Closing and reopening ask once more (with a note or a
    reason) on a confirmation page; the other moves happen at once."""
    case = _case(request, code, Action.MOVE_CASE_STATUS)
    form = MoveForm(request.POST)
    if not form.is_valid():
        return _refused(request, case, _("Choose a status move from the case page."), 400)
    d = form.cleaned_data
    to, expected = d["to"], d["expected"]
    url = request.path
    hidden = {"to": to, "expected": expected}
    try:
        if expected == CaseStatus.CLOSED:
            if not d["confirmed"] or not d["reason"].strip():
                return _confirm(
                    request, case, form,
                    title=_("Reopen case %(code)s as \u201c%(s)s\u201d?")
                    % {"code": case.code, "s": CaseStatus(to).label},
                    button=_("Reopen the case"), reason_label=_("Why is the case reopened?"),
                    reason_required=True, hidden=hidden, action_url=url,
                    status=400 if d["confirmed"] else 200)
            transitions.reopen(request.user, case, to, reason=d["reason"], request=request)
            messages.success(request, _("The case was reopened."))
        elif to == CaseStatus.CLOSING:
            if not d["confirmed"]:
                return _confirm(
                    request, case, form,
                    title=_("Ask a supervisor to close case %(code)s?") % {"code": case.code},
                    button=_("Request closure"),
                    reason_label=_("Note for the supervisor (optional)"),
                    reason_required=False, hidden=hidden, action_url=url)
            transitions.request_closure(request.user, case, expected=expected,
                                        note=d["reason"], request=request)
            messages.success(request, _("Closure was requested. A supervisor approves or "
                                        "rejects it; until then the case is \u201cclosing\u201d."))
        else:
            transitions.move(request.user, case, to, expected=expected, request=request)
            messages.success(request, _("The status was changed."))
    except transitions.StaleStatus as exc:
        return _refused(request, case, exc.text, 409)
    except ValidationError as exc:
        return _refused(request, case, " ".join(exc.messages), 400)
    return redirect("cases:detail", code=case.code)


@staff_required()
@require_POST
def closure_decide(request: HttpRequest, code: str) -> HttpResponse:
    """A supervisor approves (after a confirmation) or rejects (with a reason) a closure."""
    case = _case(request, code, Action.APPROVE_CASE_CLOSURE)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        return _refused(request, case, _("Approve or reject the closure."), 400)
    d = form.cleaned_data
    hidden = {"decision": d["decision"]}
    back = request.POST.get("next") == "queue"
    if back:
        hidden["next"] = "queue"
    try:
        if d["decision"] == "approve":
            if not d["confirmed"]:
                return _confirm(
                    request, case, form,
                    title=_("Close case %(code)s?") % {"code": case.code},
                    button=_("Approve and close"), reason_label="", reason_required=False,
                    hidden=hidden, action_url=request.path)
            transitions.approve_closure(request.user, case, request=request)
            messages.success(request, _("Case %(code)s was closed.") % {"code": case.code})
        else:
            if not d["confirmed"] or not d["reason"].strip():
                return _confirm(
                    request, case, form,
                    title=_("Reject the closure of case %(code)s?") % {"code": case.code},
                    button=_("Reject the closure"),
                    reason_label=_("Why does the case stay open?"), reason_required=True,
                    hidden=hidden, action_url=request.path,
                    status=400 if d["confirmed"] else 200)
            transitions.reject_closure(request.user, case, reason=d["reason"], request=request)
            messages.success(request, _("The closure was rejected; the case went back."))
    except transitions.StaleStatus as exc:
        return _refused(request, case, exc.text, 409)
    except transitions.OwnClosureRequest as exc:
        return _refused(request, case, exc.text, 403)
    except ValidationError as exc:
        return _refused(request, case, " ".join(exc.messages), 400)
    if back:
        return redirect("cases:closure_queue")
    return redirect("cases:detail", code=case.code)


@staff_required(Action.APPROVE_CASE_CLOSURE)
def closure_queue(request: HttpRequest) -> HttpResponse:
    """Closure requests waiting for a supervisor, oldest first."""
    latest = (StatusChange.objects.filter(case=OuterRef("pk"),
                                          kind=StatusChangeKind.CLOSURE_REQUESTED)
              .order_by("-at", "-id"))
    qs = (Case.objects.filter(status=CaseStatus.CLOSING)
          .annotate(requested_at=Subquery(latest.values("at")[:1]))
          .select_related("lead_counselor")
          .prefetch_related(Prefetch(
              "status_changes",
              queryset=StatusChange.objects.filter(kind=StatusChangeKind.CLOSURE_REQUESTED)
              .select_related("actor").order_by("-at", "-id"),
              to_attr="closure_requests"))
          .order_by("requested_at", "pk"))
    page = Paginator(qs, QUEUE_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = []
    for case in page.object_list:
        requests: list[StatusChange] = getattr(case, "closure_requests", [])
        change = requests[0] if requests else None
        rows.append({"case": case, "change": change,
                     "own": change is not None and change.actor_id == request.user.pk})
    audit_record(actor=request.user, action=CLOSURE_QUEUE_VIEW, request=request)
    return render(request, "cases/closure_queue.html", {
        "rows": rows, "page": page,
        "show_note": can(request.user, Action.VIEW_PERSONAL_DATA),
    })
