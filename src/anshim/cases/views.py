"""Staff views for cases: thin; the policy decides, the services act."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Case as CaseWhen
from django.db.models import Exists, IntegerField, OuterRef, Q, QuerySet, Value, When
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from anshim.cases import consent, services
from anshim.cases.forms import (
    CaseEditForm,
    CaseFilterForm,
    CaseTeam,
    ConsentForm,
    ContactForm,
    IntakeForm,
    NoteForm,
    OverrideForm,
    ReassessForm,
    ReferralForm,
    ReferralStatusForm,
    ReplyForm,
)
from anshim.cases.models import (
    REFERRAL_PENDING,
    Case,
    CaseHarm,
    CaseStatus,
    Consent,
    ConsentGiver,
    ConsentScope,
    Referral,
    RiskLevel,
)
from anshim.cases.triage import TriageFactors, reason_messages
from anshim.erasure.models import Sighting
from anshim.erasure.summary import case_summary
from anshim.experts.followup import follow_up_needed
from anshim.experts.models import Assignment, AssignmentStatus
from anshim.experts.panels import case_panel_context
from anshim.portal import services as portal
from anshim.security.decorators import staff_required
from anshim.security.policy import Action, allowed_actions, can, require, visible_cases

RISK_ORDER = CaseWhen(
    When(risk_level=RiskLevel.URGENT, then=Value(0)),
    When(risk_level=RiskLevel.HIGH, then=Value(1)),
    When(risk_level=RiskLevel.MEDIUM, then=Value(2)),
    When(risk_level=RiskLevel.LOW, then=Value(3)),
    default=Value(4), output_field=IntegerField(),
)
LIST_LIMIT = 200  # the API's list (unpaginated)
PAGE_SIZE = 50  # the staff list, one page


def _day_start(day: dt.date) -> dt.datetime:
    """Midnight of `day` in the center's time zone: a range on the indexed column itself
    (a `__date` lookup would wrap the column in a function on every row)."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def filter_cases(user: Any, params: dict[str, Any]) -> QuerySet[Case]:
    """The list's filters, all in SQL. Assignment filters use EXISTS rather than joins, so
    no DISTINCT over the whole table is needed to undo the join's duplicates."""
    qs = visible_cases(user).annotate(risk_rank=RISK_ORDER)
    counselors = Case.counselors.through.objects
    specialists = Case.erasure_specialists.through.objects
    if params.get("q"):
        qs = qs.filter(code__contains=str(params["q"]).strip().upper().replace(" ", ""))
    if params.get("status"):
        qs = qs.filter(status=params["status"])
    if params.get("risk"):
        qs = qs.filter(risk_level=params["risk"])
    if params.get("counselor"):
        who = params["counselor"]
        qs = qs.filter(Q(lead_counselor=who) | Exists(
            counselors.filter(case_id=OuterRef("pk"), user_id=getattr(who, "pk", who))))
    team = params.get("team")
    if team == CaseTeam.UNASSIGNED:
        qs = qs.filter(lead_counselor__isnull=True)
    elif team == CaseTeam.COUNSELING:
        qs = qs.filter(Q(lead_counselor__isnull=False)
                       | Exists(counselors.filter(case_id=OuterRef("pk"))))
    elif team == CaseTeam.ERASURE:
        qs = qs.filter(Exists(specialists.filter(case_id=OuterRef("pk"))))
    if params.get("opened_from"):
        qs = qs.filter(created_at__gte=_day_start(params["opened_from"]))
    if params.get("opened_to"):
        qs = qs.filter(created_at__lt=_day_start(params["opened_to"] + dt.timedelta(days=1)))
    # The dashboard's slice, as figures._cases_in counts it: EXISTS, so a case is listed once.
    if params.get("age"):
        qs = qs.filter(person__age_group=params["age"])
    if params.get("harm"):
        qs = qs.filter(Exists(CaseHarm.objects.filter(case_id=OuterRef("pk"),
                                                      harm_type=params["harm"])))
    if params.get("platform"):
        qs = qs.filter(Exists(Sighting.objects.filter(
            case_id=OuterRef("pk"), platform_id=getattr(params["platform"], "pk",
                                                        params["platform"]))))
    if params.get("lead"):
        qs = qs.filter(lead_counselor=params["lead"])
    if params.get("open"):
        qs = qs.exclude(status=CaseStatus.CLOSED)
    if params.get("referral_pending"):
        qs = qs.filter(Exists(Referral.objects.filter(case_id=OuterRef("pk"),
                                                      status__in=REFERRAL_PENDING)))
    if params.get("expert"):
        # an expert's open assignments, as the dashboard's caseload counts them
        qs = qs.filter(Exists(Assignment.objects.filter(
            case_id=OuterRef("pk"), expert_id=getattr(params["expert"], "pk", params["expert"]),
            status=AssignmentStatus.ACTIVE)))
    if params.get("no_consent"):
        qs = qs.exclude(Exists(Consent.objects.filter(case_id=OuterRef("pk"),
                                                      withdrawn_at__isnull=True)))
    if params.get("mine"):
        qs = qs.filter(Q(lead_counselor=user)
                       | Exists(counselors.filter(case_id=OuterRef("pk"), user_id=user.pk))
                       | Exists(specialists.filter(case_id=OuterRef("pk"), user_id=user.pk)))
    if params.get("overdue"):
        qs = qs.filter(response_due__lt=timezone.now()).exclude(status=CaseStatus.CLOSED)
    order = {
        "deadline": ["response_due", "risk_rank"],
        "newest": ["-created_at"],
    }.get(params.get("sort") or "risk", ["risk_rank", "response_due"])
    # The list never shows the encrypted summary: not decrypting it on every row is most of
    # what a long page used to cost.
    return (qs.order_by(*order, "-created_at", "-pk").defer("summary", "portal_passphrase_hash")
            .select_related("lead_counselor").prefetch_related("harms"))


@dataclass(frozen=True)
class CaseRow:
    case: Case
    overdue: bool


@staff_required(Action.VIEW_CASE_LIST)
def case_list(request: HttpRequest) -> HttpResponse:
    form = CaseFilterForm(request.GET or None)
    params = form.cleaned_data if form.is_valid() else {}
    # The experts' "follow-up needed" flag: one EXISTS in the page's own query, no query a row.
    cases = filter_cases(request.user, params).annotate(expert_follow_up=follow_up_needed())
    page = Paginator(cases, PAGE_SIZE).get_page(
        request.GET.get("page"))
    now = timezone.now()
    rows = [CaseRow(case=c, overdue=services.is_overdue(c, now)) for c in page.object_list]
    # Page links keep the filters: the query string without its page number.
    query = request.GET.copy()
    query.pop("page", None)
    services.audit(actor=request.user, action="case.list", request=request)
    return render(request, "cases/list.html", {
        "form": form, "rows": rows, "page": page, "filter_query": query.urlencode(),
        "can_create": Action.CREATE_CASE in allowed_actions(request.user),
        "inbox_waiting": portal.unanswered_count(request.user)
        if can(request.user, Action.VIEW_PORTAL_INBOX) else None,
    })


def _get_case(request: HttpRequest, code: str, action: Action = Action.VIEW_CASE) -> Case:
    case = get_object_or_404(Case.objects.select_related("person", "lead_counselor"),
                             code=code.upper())
    require(request.user, action, case)
    return case


def _detail_context(request: HttpRequest, case: Case, **forms: Any) -> dict[str, Any]:
    user = request.user
    allowed = allowed_actions(user, case)
    ctx: dict[str, Any] = {"case": case, "allowed": {a.value for a in allowed}}
    assessments = list(case.assessments.select_related("assessed_by", "overridden_by"))
    ctx["assessments"] = [
        {"a": a, "reasons": reason_messages(a.reasons)} for a in reversed(assessments)
    ]
    ctx["current_reasons"] = ctx["assessments"][0]["reasons"] if assessments else []
    ctx["overdue"] = services.is_overdue(case)
    ctx["harms"] = case.harms.all()
    ctx["consents"] = consent.consent_state(case)
    ctx["needs_guardian"] = consent.needs_guardian_consent(case)
    if Action.VIEW_PERSONAL_DATA in allowed:
        ctx["person"] = case.person
        ctx["guardians"] = list(case.person.guardians.all())
        ctx["contacts"] = list(case.contacts.select_related("counselor"))
        services.audit(actor=user, action="case.view_personal_data", target=case.person,
                       case=case, request=request)
    ctx["notes"] = services.visible_notes(user, case, request)
    if Action.VIEW_TIMELINE in allowed:
        ctx["timeline"] = list(case.timeline.select_related("actor"))
    if Action.VIEW_PERSONAL_DATA in allowed or Action.MANAGE_REFERRALS in allowed:
        referrals = list(case.referrals.all())
        ctx["referrals"] = [
            {"r": r, "form": ReferralStatusForm(prefix=f"ref{r.pk}",
                                                initial={"status": r.status})}
            for r in referrals
        ]
    panel = case_panel_context(user, case)
    ctx["has_experts_panel"] = panel is not None
    if panel is not None:
        # The experts app's include reads its own names; ours win on a clash.
        ctx = {**panel, **ctx}
    ctx["erasure_summary"] = case_summary(case)
    # The status, the workflow moves offered and a pending closure (anshim.cases.workflow).
    from anshim.cases.views_status import status_panel

    ctx["status_panel"] = status_panel(user, case, ctx["allowed"])
    ctx["edit_form"] = forms.get("edit_form") or CaseEditForm(
        prefix="edit", initial={"version": case.version,
                                "summary": case.summary if "person" in ctx else "",
                                "offender_relationship": case.offender_relationship,
                                "lead_counselor": case.lead_counselor_id,
                                "counselors": list(case.counselors.values_list("pk", flat=True)),
                                "erasure_specialists": list(
                                    case.erasure_specialists.values_list("pk", flat=True))})
    ctx["contact_form"] = forms.get("contact_form") or ContactForm(
        prefix="contact", initial={"started_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")})
    ctx["note_form"] = forms.get("note_form") or NoteForm(prefix="note")
    ctx["override_form"] = forms.get("override_form") or OverrideForm(prefix="override")
    ctx["reassess_form"] = forms.get("reassess_form") or ReassessForm(
        prefix="reassess",
        initial={"factors": [f for f in TriageFactors.flag_names()
                             if assessments and assessments[-1].factors.get(f)]})
    ctx["referral_form"] = forms.get("referral_form") or ReferralForm(prefix="referral")
    ctx["consent_error"] = forms.get("consent_error")
    ctx["new_passphrase"] = forms.get("new_passphrase")
    ctx["thread"] = portal.staff_thread(user, case, request=request)
    ctx["response_hours"] = portal.response_target().total_seconds() / 3600
    ctx["reply_form"] = forms.get("reply_form") or ReplyForm(
        prefix="reply", initial={"idempotency_key": secrets.token_urlsafe(24)})
    services.audit(actor=user, action="case.view", target=case, case=case, request=request)
    return ctx


def _render_detail(request: HttpRequest, case: Case, status: int = 200,
                   **forms: Any) -> HttpResponse:
    context = _detail_context(request, case, **forms)
    if can(request.user, Action.MANAGE_CONSENT, case):
        context["keep_data_follow_up"] = services.keep_data_follow_up(case)
    return render(request, "cases/detail.html", context, status=status)


@staff_required()
def case_detail(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code)
    return _render_detail(request, case)


def _back(case: Case) -> HttpResponse:
    return redirect("cases:detail", code=case.code)


def _add_errors(form: Any, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for name, errs in exc.error_dict.items():
            form.add_error(name if name in form.fields else None, errs)
    else:
        form.add_error(None, exc)


@staff_required()
@require_POST
def case_edit(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code, Action.EDIT_CASE)
    form = CaseEditForm(request.POST, prefix="edit")
    if not form.is_valid():
        return _render_detail(request, case, 400, edit_form=form)
    # The status moves with the workflow buttons (views_status), never in this form.
    changes: dict[str, Any] = {}
    if request.POST.get("edit-staff_fields") == "1":
        # Only a form that showed the staff fields may change them: an empty checkbox list
        # must mean "nobody", never "not sent". The service refuses (403) a change of who is
        # assigned from anyone but a supervisor.
        changes |= {
            "lead_counselor": form.cleaned_data["lead_counselor"],
            "counselors": list(form.cleaned_data["counselors"]),
            "erasure_specialists": list(form.cleaned_data["erasure_specialists"]),
        }
    if Action.VIEW_PERSONAL_DATA in allowed_actions(request.user, case):
        changes["summary"] = form.cleaned_data["summary"]
        if form.cleaned_data.get("offender_relationship"):
            changes["offender_relationship"] = form.cleaned_data["offender_relationship"]
    try:
        services.update_case(request.user, case, form.cleaned_data["version"], changes, request)
    except services.StaleEdit as exc:
        # Keep what the user typed; tell them what happened; they reload to merge.
        form.add_error(None, exc.text)
        return _render_detail(request, case, 409, edit_form=form)
    except ValidationError as exc:
        _add_errors(form, exc)
        return _render_detail(request, case, 400, edit_form=form)
    messages.success(request, _("The case was saved."))
    return _back(case)


@staff_required()
@require_POST
def contact_add(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code, Action.EDIT_CASE)
    form = ContactForm(request.POST, prefix="contact")
    if form.is_valid():
        try:
            services.add_contact(request.user, case, request=request, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("The contact was logged."))
            return _back(case)
    return _render_detail(request, case, 400, contact_form=form)


@staff_required()
@require_POST
def note_add(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code, Action.ADD_NOTE)
    form = NoteForm(request.POST, prefix="note")
    if form.is_valid():
        try:
            services.add_note(request.user, case, request=request, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("The note was added."))
            return _back(case)
    return _render_detail(request, case, 400, note_form=form)


@staff_required()
@require_POST
def triage_reassess(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code, Action.TRIAGE)
    form = ReassessForm(request.POST, prefix="reassess")
    if not form.is_valid():
        return _render_detail(request, case, 400, reassess_form=form)
    factors = TriageFactors.from_flags(form.cleaned_data["factors"])
    services.reassess(request.user, case, factors, request)
    messages.success(request, _("The risk was assessed again."))
    return _back(case)


@staff_required()
@require_POST
def triage_override(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code, Action.OVERRIDE_TRIAGE)
    form = OverrideForm(request.POST, prefix="override")
    if form.is_valid():
        try:
            services.override_triage(request.user, case, form.cleaned_data["level"],
                                     form.cleaned_data["reason"], request)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("The risk level was overridden."))
            return _back(case)
    return _render_detail(request, case, 400, override_form=form)


@staff_required()
@require_POST
def consent_change(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code, Action.MANAGE_CONSENT)
    form = ConsentForm(request.POST)
    if not form.is_valid():
        return _render_detail(request, case, 400,
                              consent_error=_("Choose a consent scope and who gives it."))
    d = form.cleaned_data
    if not d.get("confirmed") or not d.get("method"):
        # A toggle never changes consent at once: the confirmation page names the consent,
        # for whom, and asks how it reached the center.
        return render(request, "cases/consent_confirm.html", {
            "case": case, "form": form,
            "scope_label": ConsentScope(d["scope"]).label,
            "giver_label": ConsentGiver(d["given_by"]).label,
            "grant": d["action"] == "grant",
        }, status=400 if d.get("confirmed") else 200)
    try:
        if d["action"] == "grant":
            services.grant_consent(request.user, case, d["scope"], d["given_by"],
                                   method=d["method"], request=request)
            messages.success(request, _("The consent was recorded."))
        else:
            services.withdraw_consent(request.user, case, d["scope"], d["given_by"],
                                      request=request, method=d["method"])
            messages.success(request, _("The consent was withdrawn."))
    except ValidationError as exc:
        return _render_detail(request, case, 400, consent_error=" ".join(exc.messages))
    return _back(case)


@staff_required()
@require_POST
def message_reply(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code, Action.REPLY_PORTAL_MESSAGES)
    form = ReplyForm(request.POST, prefix="reply")
    if form.is_valid():
        try:
            portal.reply(request.user, case, form.cleaned_data["body"],
                         idempotency_key=form.cleaned_data["idempotency_key"], request=request)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Your reply was sent. The victim sees it on the "
                                        "portal's status page."))
            return redirect(reverse("cases:detail", kwargs={"code": case.code}) + "#messages")
    return _render_detail(request, case, 400, reply_form=form)


@staff_required(Action.VIEW_PORTAL_INBOX)
def inbox(request: HttpRequest) -> HttpResponse:
    """The victims' portal messages that wait for an answer, on the user's cases (all cases
    for a supervisor); the user's unread notifications above them."""
    rows, page = portal.inbox(request.user, page=request.GET.get("page"), request=request)
    notes = list(request.user.notifications.filter(read_at__isnull=True)[:20])  # type: ignore[union-attr]
    if notes:
        request.user.notifications.filter(  # type: ignore[union-attr]
            pk__in=[n.pk for n in notes]).update(read_at=timezone.now())
    return render(request, "cases/inbox.html", {
        "rows": rows, "page": page, "notifications": notes,
        "response_hours": portal.response_target().total_seconds() / 3600,
    })


@staff_required()
@require_POST
def referral_add(request: HttpRequest, code: str) -> HttpResponse:
    case = _get_case(request, code, Action.MANAGE_REFERRALS)
    form = ReferralForm(request.POST, prefix="referral")
    if form.is_valid():
        try:
            services.create_referral(request.user, case, request=request, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("The referral was created."))
            return _back(case)
    return _render_detail(request, case, 400, referral_form=form)


@staff_required()
@require_POST
def referral_update(request: HttpRequest, code: str, referral_id: int) -> HttpResponse:
    case = _get_case(request, code, Action.MANAGE_REFERRALS)
    referral = get_object_or_404(Referral, pk=referral_id, case=case)
    form = ReferralStatusForm(request.POST, prefix=f"ref{referral.pk}")
    if not form.is_valid():
        messages.error(request, _("Choose a valid referral status."))
        return _back(case)
    services.update_referral(request.user, referral, request=request, **form.cleaned_data)
    messages.success(request, _("The referral was updated."))
    return _back(case)


@staff_required(Action.CREATE_CASE)
def intake(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = IntakeForm(request.POST)
        if form.is_valid():
            try:
                case = services.intake(request.user, form.to_intake(), request)
            except ValidationError as exc:
                _add_errors(form, exc)
            except PermissionDenied:
                raise
            else:
                messages.success(request, _("Case %(code)s was opened.") % {"code": case.code})
                return _back(case)
        return render(request, "cases/intake.html", {"form": form}, status=400)
    form = IntakeForm(initial={"started_at": timezone.localtime().strftime("%Y-%m-%dT%H:%M")})
    return render(request, "cases/intake.html", {"form": form})
