"""Staff and expert pages of the experts app. Thin: parse, ask the policy, call services."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from anshim.cases.models import Case
from anshim.experts import services
from anshim.experts.forms import (
    AppointmentForm,
    AssignForm,
    AvailabilityFormSet,
    CancelForm,
    ExpertForm,
    HeldSessionForm,
    OutcomeForm,
    SessionLogForm,
    SuggestForm,
)
from anshim.experts.models import (
    Appointment,
    AppointmentStatus,
    Assignment,
    AssignmentStatus,
    Expert,
    SessionLog,
)
from anshim.experts.panels import may_see_brief
from anshim.experts.ranking import suggest_experts
from anshim.experts.slots import free_days
from anshim.security.decorators import staff_required
from anshim.security.policy import Action, Refused, can, require
from anshim.security.roles import Role


def _posted(request: HttpRequest) -> Any:
    """The POST data to bind a form to, or None on GET (an empty POST still binds)."""
    return request.POST if request.method == "POST" else None


def _assignment_page(assignment: Assignment) -> HttpResponseRedirect:
    return redirect("experts:assignment", assignment.pk)


def _may_open_assignment(user: Any, assignment: Assignment) -> bool:
    case = assignment.case
    if can(user, Action.ASSIGN_EXPERT, case) or can(user, Action.VIEW_SESSION_LOGS, case):
        return True
    # An expert opens only their own, active assignment.
    return can(user, Action.VIEW_ASSIGNMENT, case) and assignment.expert.user_id == user.pk \
        and assignment.status == AssignmentStatus.ACTIVE


def _load_assignment(request: HttpRequest, pk: int) -> Assignment:
    assignment = get_object_or_404(
        Assignment.objects.select_related("case", "expert__user"), pk=pk)
    if not _may_open_assignment(request.user, assignment):
        raise Refused(Action.VIEW_ASSIGNMENT, assignment.case)
    return assignment


def _load_appointment(request: HttpRequest, pk: int) -> Appointment:
    appointment = get_object_or_404(
        Appointment.objects.select_related("assignment__case", "expert__user"), pk=pk)
    if not _may_open_assignment(request.user, appointment.assignment):
        raise Refused(Action.VIEW_ASSIGNMENT, appointment.assignment.case)
    return appointment


# --- Registry -----------------------------------------------------------------------------
@staff_required(Action.VIEW_EXPERTS)
def expert_list(request: HttpRequest) -> HttpResponse:
    experts = (
        Expert.objects.select_related("user")
        .annotate(active_count=Count("assignments",
                                     filter=Q(assignments__status=AssignmentStatus.ACTIVE)))
        .order_by("-active", "kind", "user__display_name", "pk")
    )
    kind = request.GET.get("kind", "")
    if kind in ("legal", "therapy"):
        experts = experts.filter(kind=kind)
    return render(request, "experts/list.html", {
        "experts": experts, "kind": kind,
        "can_manage": can(request.user, Action.MANAGE_EXPERTS),
    })


@staff_required(Action.VIEW_EXPERTS)
def expert_detail(request: HttpRequest, pk: int) -> HttpResponse:
    expert = get_object_or_404(Expert.objects.select_related("user"), pk=pk)
    return render(request, "experts/detail.html", {
        "expert": expert,
        "availability": expert.availability.all(),
        "active_count": expert.assignments.filter(status=AssignmentStatus.ACTIVE).count(),
        "upcoming": expert.appointments.filter(
            status=AppointmentStatus.SCHEDULED, starts_at__gte=timezone.now()).count(),
        "can_manage": can(request.user, Action.MANAGE_EXPERTS),
    })


@staff_required(Action.MANAGE_EXPERTS)
def expert_edit(request: HttpRequest, pk: int) -> HttpResponse:
    expert = get_object_or_404(Expert.objects.select_related("user"), pk=pk)
    form = ExpertForm(_posted(request), instance=expert)
    formset = AvailabilityFormSet(_posted(request), instance=expert)
    if request.method == "POST" and form.is_valid() and formset.is_valid():
        with transaction.atomic():
            form.save()
            formset.save()
        messages.success(request, _("The expert's profile was saved."))
        return redirect("experts:detail", expert.pk)
    return render(request, "experts/edit.html", {"expert": expert, "form": form,
                                                 "formset": formset})


# --- Assignment ---------------------------------------------------------------------------
@staff_required(Action.ASSIGN_EXPERT)
def assign(request: HttpRequest, case_code: str) -> HttpResponse:
    case = get_object_or_404(Case.objects.select_related("person"), code=case_code.upper())
    require(request.user, Action.ASSIGN_EXPERT, case)
    initial = {"language": case.person.preferred_language or "ko",
               "age_group": case.person.age_group}
    params = request.GET.copy()
    chosen_pk = params.pop("expert", [""])[-1]
    query = SuggestForm(params or None, initial=initial)
    suggestions: list[dict[str, Any]] = []
    searched = query.is_bound and query.is_valid()
    if searched:
        found = suggest_experts(case, query.cleaned_data["need"], query.cleaned_data["language"],
                                query.cleaned_data["region"] or None, limit=5,
                                age_group=query.cleaned_data["age_group"] or None)
        experts = Expert.objects.select_related("user").in_bulk([s.expert_id for s in found])
        base = {k: v for k, v in query.cleaned_data.items() if v}
        suggestions = [{"s": s, "expert": experts[s.expert_id],
                        "choose_url": "?" + urlencode({**base, "expert": s.expert_id})}
                       for s in found]
    # The top suggestion is pre-selected; "Choose" on a ranked row selects that one instead.
    chosen = next((i for i in suggestions if str(i["expert"].pk) == chosen_pk),
                  suggestions[0] if suggestions else None)
    for item in suggestions:
        item["chosen"] = item is chosen
    form = AssignForm(_posted(request), initial={
        "need": query.cleaned_data.get("need") if searched else None,
        "expert": chosen["expert"].pk if chosen else None})
    if request.method == "POST" and form.is_valid():
        try:
            assignment = services.assign_expert(
                request.user, case, form.cleaned_data["expert"], form.cleaned_data["need"],
                form.cleaned_data["brief"], request=request)
        except services.ExpertsError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("The expert was assigned and notified."))
            return _assignment_page(assignment)
    return render(request, "experts/assign.html", {
        "case": case, "query": query, "suggestions": suggestions, "form": form,
        "chosen": chosen,
    })


@staff_required()
def assignment_detail(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = _load_assignment(request, pk)
    case = assignment.case
    services.audit(actor=request.user, action="assignment.view", target=assignment, case=case,
                   request=request)
    appointments = []
    show_location = may_see_location(request.user, assignment)
    for appt in assignment.appointments.select_related("log").order_by("starts_at"):
        log = getattr(appt, "log", None)
        appointments.append({
            "a": appt, "show_location": show_location,
            "log": log if log is not None and services.can_view_log(request.user, appt) else None,
            "can_write_log": services.can_write_log(request.user, appt)
            and appt.status in (AppointmentStatus.SCHEDULED, AppointmentStatus.DONE),
            "can_manage": can(request.user, Action.MANAGE_APPOINTMENTS, case)
            and appt.status == AppointmentStatus.SCHEDULED,
        })
    active = assignment.status == AssignmentStatus.ACTIVE
    return render(request, "experts/assignment.html", {
        "assignment": assignment, "case": case,
        "show_brief": may_see_brief(request.user, case),
        "appointments": appointments,
        "can_book": active and can(request.user, Action.MANAGE_APPOINTMENTS, case),
        "can_record_held": services.may_record_held(request.user, assignment),
        "can_end": active and can(request.user, Action.ASSIGN_EXPERT, case),
        "book_form": AppointmentForm(),
        "now": timezone.now(),
    })


@require_POST
@staff_required()
def assignment_end(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = _load_assignment(request, pk)
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.end_assignment(request.user, assignment, reason=reason, request=request)
    except services.ExpertsError as exc:
        messages.error(request, exc.text)
    else:
        messages.success(request, _("The assignment has ended."))
    return _assignment_page(assignment)


# --- Appointments -------------------------------------------------------------------------
def _slot_picker(assignment: Assignment, form: AppointmentForm,
                 exclude: Appointment | None = None) -> dict[str, Any]:
    """The free start times of the expert for every duration (the page's script shows those
    of the chosen duration; without script the list of the form's duration shows)."""
    by_duration = free_days(assignment.expert, exclude=exclude)
    raw = form["duration"].value()
    try:
        duration = int(raw) if raw not in (None, "") else 60
    except (TypeError, ValueError):
        duration = 60
    data = {str(m): [{"date": d.day.isoformat(),
                      "times": [timezone.localtime(t).strftime("%H:%M") for t in d.starts]}
                     for d in days] for m, days in by_duration.items()}
    return {"slot_days": by_duration.get(duration, []), "slot_data": data,
            "slot_duration": duration}


def may_see_location(user: Any, assignment: Assignment) -> bool:
    """The meeting place may be a home address: those who arrange the sessions and the
    assignment's own expert see it, nobody else."""
    return can(user, Action.MANAGE_APPOINTMENTS, assignment.case) or (
        assignment.expert.user_id == getattr(user, "pk", None))


@staff_required()
def book(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = _load_assignment(request, pk)
    require(request.user, Action.MANAGE_APPOINTMENTS, assignment.case)
    form = AppointmentForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.book_appointment(
                request.user, assignment, form.starts_at(),
                duration_minutes=form.cleaned_data["duration"], mode=form.cleaned_data["mode"],
                location=form.cleaned_data["location"], request=request)
        except services.ExpertsError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("The appointment was booked."))
            return _assignment_page(assignment)
    return render(request, "experts/book.html", {
        "assignment": assignment, "form": form,
        "availability": assignment.expert.availability.all(),
        "title": _("Book an appointment"), **_slot_picker(assignment, form),
    }, status=400 if form.is_bound and form.errors else 200)


@staff_required()
def record_held(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = _load_assignment(request, pk)
    if not services.may_record_held(request.user, assignment):
        raise PermissionDenied("Not permitted: write_session_log")
    form = HeldSessionForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            services.record_held_session(
                request.user, assignment, form.starts_at(), form.cleaned_data["summary"],
                duration_minutes=form.cleaned_data["duration"], mode=form.cleaned_data["mode"],
                follow_up_needed=form.cleaned_data["follow_up_needed"], request=request)
        except services.ExpertsError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("The session and its log were saved."))
            return _assignment_page(assignment)
    return render(request, "experts/book.html", {
        "assignment": assignment, "form": form, "hide_availability": True,
        "title": _("Record a session that took place"),
    }, status=400 if form.is_bound and form.errors else 200)


@staff_required()
def reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    appointment = _load_appointment(request, pk)
    assignment = appointment.assignment
    require(request.user, Action.MANAGE_APPOINTMENTS, assignment.case)
    local = timezone.localtime(appointment.starts_at)
    minutes = int((appointment.ends_at - appointment.starts_at).total_seconds() // 60)
    form = AppointmentForm(_posted(request), initial={
        "date": local.date(), "time": local.time(), "duration": minutes,
        "mode": appointment.mode, "location": appointment.location})
    if request.method == "POST" and form.is_valid():
        try:
            services.reschedule_appointment(
                request.user, appointment, form.starts_at(),
                duration_minutes=form.cleaned_data["duration"], mode=form.cleaned_data["mode"],
                location=form.cleaned_data["location"], request=request)
        except services.ExpertsError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("The appointment was moved."))
            return _assignment_page(assignment)
    return render(request, "experts/book.html", {
        "assignment": assignment, "form": form, "appointment": appointment,
        "availability": assignment.expert.availability.all(),
        "title": _("Move the appointment"), **_slot_picker(assignment, form, exclude=appointment),
    }, status=400 if form.is_bound and form.errors else 200)


@require_POST
@staff_required()
def cancel(request: HttpRequest, pk: int) -> HttpResponse:
    appointment = _load_appointment(request, pk)
    form = CancelForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.cancel_appointment(request.user, appointment, reason=reason, request=request)
    except services.ExpertsError as exc:
        messages.error(request, exc.text)
    else:
        messages.success(request, _("The appointment was cancelled."))
    return _assignment_page(appointment.assignment)


@require_POST
@staff_required()
def outcome(request: HttpRequest, pk: int) -> HttpResponse:
    appointment = _load_appointment(request, pk)
    form = OutcomeForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose done or did not attend."))
        return _assignment_page(appointment.assignment)
    try:
        services.set_outcome(request.user, appointment, form.cleaned_data["status"],
                            request=request)
    except services.ExpertsError as exc:
        messages.error(request, exc.text)
    else:
        messages.success(request, _("The appointment was updated."))
    return _assignment_page(appointment.assignment)


@staff_required()
def session_log(request: HttpRequest, pk: int) -> HttpResponse:
    appointment = _load_appointment(request, pk)
    if not services.may_write_log(request.user, appointment):
        raise PermissionDenied("Not permitted: write_session_log")
    if not services.log_is_open(appointment):
        # An old link or a typed address: say why instead of a form that cannot be saved.
        messages.error(request, _("The session log can be written once the session has "
                                  "started, and not for a cancelled or missed session."))
        return _assignment_page(appointment.assignment)
    existing = SessionLog.objects.filter(appointment=appointment).first()
    initial = {"summary": existing.summary, "follow_up_needed": existing.follow_up_needed} \
        if existing else {}
    form = SessionLogForm(_posted(request), initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.write_session_log(
                request.user, appointment, form.cleaned_data["summary"],
                follow_up_needed=form.cleaned_data["follow_up_needed"], request=request)
        except services.ExpertsError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, _("The session log was saved."))
            return _assignment_page(appointment.assignment)
    return render(request, "experts/log.html", {"appointment": appointment, "form": form},
                  status=400 if form.is_bound and form.errors else 200)


# --- The expert's own home ----------------------------------------------------------------
@staff_required()
def my_assignments(request: HttpRequest) -> HttpResponse:
    expert: Expert | None = getattr(request.user, "expert_profile", None)
    if expert is None:
        if getattr(request.user, "role", "") != Role.EXPERT:
            raise PermissionDenied("Not an expert")
        # An expert account whose registry entry is not linked yet: this is still their start
        # page, so it says what to do instead of refusing.
        return render(request, "experts/my.html", {"expert": None})
    assignments = list(
        expert.assignments.filter(status=AssignmentStatus.ACTIVE)
        .select_related("case").order_by("-created_at")
    )
    upcoming = list(
        expert.appointments.filter(status=AppointmentStatus.SCHEDULED,
                                   assignment__status=AssignmentStatus.ACTIVE,
                                   ends_at__gte=timezone.now())
        .select_related("assignment__case").order_by("starts_at")
    )
    # The page shows case codes and appointment times: a read of each case, audited.
    shown = {a.case.pk: a.case for a in assignments}
    shown |= {u.assignment.case.pk: u.assignment.case for u in upcoming}
    for case in shown.values():
        services.audit(actor=request.user, action="assignment.list", target=None, case=case,
                       request=request)
    return render(request, "experts/my.html", {
        "expert": expert, "assignments": assignments, "upcoming": upcoming,
        "notifications": request.user.notifications.filter(read_at__isnull=True)[:20],  # type: ignore[union-attr]
    })
