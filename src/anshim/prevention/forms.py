"""Forms of the prevention app. They parse and validate input; services do the work."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from anshim.cases.models import ContactPreference, HarmType
from anshim.prevention.models import (
    Facilitator,
    FacilitatorKind,
    KnowledgeTest,
    Module,
    ProgrammeSession,
    School,
    SchoolLevel,
    SessionStatus,
    Sex,
    Wave,
)
from anshim.prevention.services import FIDELITY_ITEMS, MAX_XLSFORM_BYTES

GRADE_CHOICES = [(g, str(g)) for g in range(1, 13)]
FIDELITY_LABELS = {
    "objectives": _("The session's objectives were explained"),
    "all_activities": _("Every planned activity was delivered"),
    "discussion": _("Students discussed the scenarios"),
    "help_card": _("The help card (hotline, portal) was handed out"),
    "evaluation": _("The evaluation was carried out"),
    "on_time": _("The session kept to its time"),
}
assert set(FIDELITY_LABELS) == set(FIDELITY_ITEMS)


def _dates(text: str) -> list[dt.date]:
    out = []
    for part in re.split(r"[\s,;]+", text.strip()):
        if not part:
            continue
        try:
            out.append(dt.date.fromisoformat(part))
        except ValueError:
            raise forms.ValidationError(
                _("Write dates as YYYY-MM-DD, separated by commas.")) from None
    return out


class SchoolForm(forms.ModelForm):
    class Meta:
        model = School
        fields = ["name", "level", "district", "students", "contact_name", "contact_phone",
                  "contact_email"]


class ModuleForm(forms.ModelForm):
    target_levels = forms.MultipleChoiceField(
        label=_("Target levels"), choices=SchoolLevel.choices,
        widget=forms.CheckboxSelectMultiple)

    class Meta:
        model = Module
        fields = ["name", "topic", "target_levels", "duration_minutes", "description",
                  "materials", "active"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3}),
                   "materials": forms.Textarea(attrs={"rows": 3})}


class FacilitatorForm(forms.ModelForm):
    class Meta:
        model = Facilitator
        fields = ["kind", "name", "user", "organization", "phone", "email", "modules", "active"]
        widgets = {"modules": forms.CheckboxSelectMultiple}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from anshim.security.models import User

        user_field = self.fields["user"]
        user_field.queryset = User.objects.filter(  # type: ignore[attr-defined]
            is_active=True, role__in=["prevention", "counselor", "supervisor"])
        user_field.help_text = _("Center staff only: their staff account.")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == FacilitatorKind.STAFF and not data.get("user"):
            self.add_error("user", _("Choose the staff member's account."))
        if data.get("kind") == FacilitatorKind.EXTERNAL:
            data["user"] = None
        return data


class BookingRequestForm(forms.Form):
    """The public form schools fill in."""

    school_name = forms.CharField(label=_("School name"), max_length=200)
    level = forms.ChoiceField(label=_("School level"), choices=SchoolLevel.choices)
    district = forms.CharField(label=_("District"), max_length=100)
    contact_name = forms.CharField(label=_("Contact person (teacher)"), max_length=200)
    contact_phone = forms.CharField(label=_("Phone"), max_length=40, required=False)
    contact_email = forms.EmailField(label=_("E-mail"), required=False)
    class_count = forms.IntegerField(label=_("Number of classes"), min_value=1, max_value=60)
    grades = forms.TypedMultipleChoiceField(label=_("Grades"), choices=GRADE_CHOICES,
                                            coerce=int, widget=forms.CheckboxSelectMultiple)
    preferred_dates = forms.CharField(
        label=_("Preferred dates"), max_length=300,
        help_text=_("One or more dates as YYYY-MM-DD, separated by commas."))
    module = forms.ModelChoiceField(label=_("Programme"), required=False,
                                    queryset=Module.objects.filter(active=True),
                                    empty_label=_("Any / advise us"))
    message = forms.CharField(label=_("Message"), required=False, max_length=2000,
                              widget=forms.Textarea(attrs={"rows": 3}))
    # A field people never see: bots fill it in.
    website = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_preferred_dates(self) -> list[dt.date]:
        dates = _dates(self.cleaned_data["preferred_dates"])
        today = timezone.localdate()
        if not dates:
            raise forms.ValidationError(_("Give at least one preferred date."))
        if any(d < today for d in dates):
            raise forms.ValidationError(_("Preferred dates cannot be in the past."))
        return dates

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("contact_phone") and not data.get("contact_email"):
            raise forms.ValidationError(_("Give a phone number or an e-mail address."))
        return data


class SessionPlanForm(forms.Form):
    school = forms.ModelChoiceField(label=_("School"), queryset=School.objects.all())
    module = forms.ModelChoiceField(label=_("Programme"),
                                    queryset=Module.objects.filter(active=True))
    facilitator = forms.ModelChoiceField(label=_("Facilitator"),
                                         queryset=Facilitator.objects.filter(active=True))
    date = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    time = forms.TimeField(label=_("Start time"),
                           widget=forms.TimeInput(attrs={"type": "time", "step": 900}))
    duration_minutes = forms.IntegerField(
        label=_("Duration (minutes)"), min_value=0, max_value=480, required=False,
        help_text=_("Empty: the programme's duration."))
    grade = forms.TypedChoiceField(label=_("Grade"), choices=GRADE_CHOICES, coerce=int)
    classes = forms.IntegerField(label=_("Classes"), min_value=1, max_value=60, initial=1)

    def starts_at(self) -> dt.datetime:
        return timezone.make_aware(dt.datetime.combine(self.cleaned_data["date"],
                                                       self.cleaned_data["time"]))


class DeclineForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=300)


class SessionReportForm(forms.Form):
    """Attendance by grade and sex (counts only), the fidelity checklist, satisfaction."""

    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, session: ProgrammeSession, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = session
        counts = {(a.grade, a.sex): a.count for a in session.attendance.all()}
        for sex, label in Sex.choices:
            self.fields[f"att_{sex}"] = forms.IntegerField(
                label=label, min_value=0, max_value=2000, required=False,
                initial=counts.get((session.grade, sex), 0))
        for item in FIDELITY_ITEMS:
            self.fields[f"fid_{item}"] = forms.BooleanField(
                label=FIDELITY_LABELS[item], required=False,
                initial=bool(session.fidelity.get(item)))
        for score in range(1, 6):
            self.fields[f"sat_{score}"] = forms.IntegerField(
                label=str(score), min_value=0, max_value=2000, required=False,
                initial=int(session.satisfaction.get(str(score), 0)))
        self.fields["version"].initial = session.version

    def attendance(self) -> dict[tuple[int, str], int]:
        return {(self.session.grade, sex): self.cleaned_data.get(f"att_{sex}") or 0
                for sex in Sex.values}

    def fidelity(self) -> dict[str, bool]:
        return {item: bool(self.cleaned_data.get(f"fid_{item}")) for item in FIDELITY_ITEMS}

    def satisfaction(self) -> dict[int, int]:
        return {s: self.cleaned_data.get(f"sat_{s}") or 0 for s in range(1, 6)}


class DisclosureForm(forms.Form):
    harm_type = forms.ChoiceField(label=_("What the child told"), choices=HarmType.choices)
    wants_help = forms.BooleanField(label=_("The child asked for help (send to counselors)"),
                                    required=False)
    contact_preference = forms.ChoiceField(
        label=_("How the child wants to be contacted"), choices=ContactPreference.choices,
        initial=ContactPreference.NONE)
    contact_detail = forms.CharField(label=_("Phone or e-mail the child gave"),
                                     max_length=200, required=False)
    note = forms.CharField(label=_("Note for the counselor (no name)"), required=False,
                           max_length=2000, widget=forms.Textarea(attrs={"rows": 3}))


class TestForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=200)
    module = forms.ModelChoiceField(label=_("Programme"), queryset=Module.objects.all())
    max_score = forms.IntegerField(label=_("Maximum score"), min_value=1, max_value=1000,
                                   initial=10)


class ScoresForm(forms.Form):
    wave = forms.ChoiceField(label=_("Wave"), choices=Wave.choices)
    taken_on = forms.DateField(label=_("Date"), widget=forms.DateInput(attrs={"type": "date"}))
    session = forms.ModelChoiceField(
        label=_("Session"), required=False,
        queryset=ProgrammeSession.objects.exclude(status=SessionStatus.CANCELLED)
        .select_related("school", "module"))
    lines = forms.CharField(
        label=_("Scores"), widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("One student per line: the self-generated code and the score, e.g. "
                    "\"지0317 7\"."))

    def __init__(self, *args: Any, test: KnowledgeTest, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.test = test


class UploadForm(forms.Form):
    title = forms.CharField(label=_("Title"), max_length=200, required=False,
                            help_text=_("Empty: the form_title of the XLSForm."))
    description = forms.CharField(label=_("Description"), required=False, max_length=2000,
                                  widget=forms.Textarea(attrs={"rows": 2}))
    xlsform = forms.FileField(label=_("XLSForm file (.xlsx)"))

    def clean_xlsform(self) -> Any:
        f = self.cleaned_data["xlsform"]
        if f.size > MAX_XLSFORM_BYTES:
            raise forms.ValidationError(_("The file is larger than 5 MB."))
        return f


class VersionUploadForm(forms.Form):
    xlsform = forms.FileField(label=_("XLSForm file (.xlsx)"))


class ClassSessionForm(forms.Form):
    school = forms.ModelChoiceField(label=_("School"), queryset=School.objects.all())
    grade = forms.TypedChoiceField(label=_("Grade"), choices=GRADE_CHOICES, coerce=int)
    label = forms.CharField(label=_("Class"), max_length=40, required=False)
    expected = forms.IntegerField(label=_("Students in class"), min_value=0, max_value=200,
                                  initial=0)
    minutes = forms.IntegerField(label=_("Open for (minutes)"), min_value=5, max_value=240,
                                 initial=45)


class DesignForm(forms.Form):
    """The sampling design as two small CSV texts (easy to paste from a spreadsheet)."""

    schools_invited = forms.IntegerField(label=_("Schools invited"), min_value=0, initial=0)
    sample = forms.CharField(
        label=_("Sampled schools"), required=False, widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("One school per line: school id, stratum, selection probability, students "
                    "sampled, participated (yes/no)."))
    margins = forms.CharField(
        label=_("Population margins"), required=False, widget=forms.Textarea(attrs={"rows": 6}),
        help_text=_("One line per grade and sex: grade, sex (female/male), students in the "
                    "population (post-stratification). For raking, give the totals instead: "
                    "'grade, *, count' and '*, sex, count'."))

    def clean_sample(self) -> list[dict[str, Any]]:
        rows = []
        for number, line in enumerate(self.cleaned_data["sample"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            try:
                school_id, stratum, prob, sampled, part = parts
                rows.append({"school": int(school_id), "stratum": stratum,
                             "probability": float(prob), "sampled": int(sampled),
                             "participated": part.lower() in ("yes", "y", "1", "true", "예")})
            except ValueError:
                raise forms.ValidationError(
                    _("Line %(line)d: five values separated by commas are needed.")
                    % {"line": number}) from None
        return rows

    def clean_margins(self) -> list[dict[str, Any]]:
        rows = []
        for number, line in enumerate(self.cleaned_data["margins"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 3:
                raise forms.ValidationError(
                    _("Line %(line)d: grade, sex and count are needed.") % {"line": number})
            rows.append({"grade": parts[0], "sex": parts[1], "count": parts[2]})
        return rows


class ExportForm(forms.Form):
    kind = forms.ChoiceField(label=_("Format"), choices=[
        ("csv", "CSV"), ("xlsx", "Excel (.xlsx)"), ("sav", "SPSS (.sav)"),
        ("codebook", _("Codebook (.csv)"))])
    profile = forms.ChoiceField(label=_("Profile"), choices=[
        ("deidentified", _("De-identified: no free text, dates as year-month")),
        ("full", _("Full: every answer (for the research team)"))],
        initial="deidentified")
