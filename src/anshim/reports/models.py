"""Per-month summary rows of closed months (a cache the dashboard reads instead of scanning
every case, sighting and notice of the period).

Each table is filled by SQL aggregation (`anshim.reports.summary.build_month`) for one calendar
month of the center's time zone. A month is cached only once it is over; the open month is
always computed live from the source rows. A change to a source row of a closed month
(a notice removed late, a sighting confirmed after the month) drops that month's rows
(`summary.invalidate`, from post_save/post_delete signals); readers read it live until the
worker has rebuilt it (`reports.tasks.build_months`, queued by the first reader); the
periodic task rebuilds every month the signals cannot see (queryset updates, bulk writes).

Nothing here identifies a person: counts per platform, age group and harm type only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

#: `harm_type` of the rows that count every case once, whatever its harm types (a case with
#: several harm types is also counted once in each of them).
ALL_HARMS = ""
#: `age_group` of the rows that count every age group together
ALL_AGES = "*"


class SummarizedMonth(models.Model):
    """A closed month whose summary rows are complete."""

    month = models.DateField(unique=True)
    built_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("summarized month")
        verbose_name_plural = _("summarized months")


class PlatformMonth(models.Model):
    """Counts per month, platform, victim age group and harm type (`ALL_HARMS`: all)."""

    month = models.DateField()
    platform_id = models.BigIntegerField(null=True)
    age_group = models.CharField(max_length=8, blank=True)
    harm_type = models.CharField(max_length=16, blank=True)
    # notices sent in the month
    sent = models.IntegerField(default=0)
    removed = models.IntegerField(default=0)
    within_24 = models.IntegerField(default=0)
    within_48 = models.IntegerField(default=0)
    within_168 = models.IntegerField(default=0)
    renotices = models.IntegerField(default=0)
    refused = models.IntegerField(default=0)
    # sightings first seen in the month
    found = models.IntegerField(default=0)
    confirmed = models.IntegerField(default=0)
    requested = models.IntegerField(default=0)
    taken_down = models.IntegerField(default=0)
    reuploaded = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["harm_type", "month", "age_group"])]
        verbose_name = _("platform month summary")
        verbose_name_plural = _("platform month summaries")


class DurationMeasure(models.TextChoices):
    REMOVAL = "removal", "notice to removal"
    FIRST_NOTICE = "first_notice", "intake to first notice"
    #: notice to removal by the notice's route (`grp`: erasure.models.NoticeRoute)
    REMOVAL_ROUTE = "removal_route", "notice to removal by route"


class RouteMonth(models.Model):
    """Notices per month by route (direct notice, partner API, regulator escalation;
    erasure.models.NoticeRoute), platform, victim age group and harm type: for
    `DurationMeasure.REMOVAL` the notices sent in the month, those removed and those removed
    within 24 h / 48 h / 7 days of sending; for `FIRST_NOTICE` the first notices of the
    cases opened in the month and those sent within 24 h / 48 h / 7 days of intake."""

    month = models.DateField()
    measure = models.CharField(max_length=13, choices=DurationMeasure.choices)
    route = models.CharField(max_length=12)
    platform_id = models.BigIntegerField(null=True)
    age_group = models.CharField(max_length=8, blank=True)
    harm_type = models.CharField(max_length=16, blank=True)
    n = models.IntegerField(default=0)
    removed = models.IntegerField(default=0)
    within_24 = models.IntegerField(default=0)
    within_48 = models.IntegerField(default=0)
    within_168 = models.IntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["measure", "harm_type", "age_group", "month"],
                                name="reports_route_slice_idx")]
        verbose_name = _("route month summary")
        verbose_name_plural = _("route month summaries")


class DurationBin(models.Model):
    """A histogram of durations per month: `bin` is the duration's lower edge in tenths of
    an hour (1 h wide under 1,000 h, 10 h above), so nearest-rank quantiles come back exact
    to that precision. `grp`: the platform id (removal) or the
    notice channel (first notice)."""

    month = models.DateField()
    measure = models.CharField(max_length=16, choices=DurationMeasure.choices)
    grp = models.CharField(max_length=24)
    age_group = models.CharField(max_length=8, blank=True)
    harm_type = models.CharField(max_length=16, blank=True)
    platform_id = models.BigIntegerField(null=True)
    bin = models.IntegerField()
    n = models.IntegerField()

    class Meta:
        # the age group in the key: the unfiltered dashboard reads the all-ages rows only
        # (a quarter of the month's rows; without it PostgreSQL fetched all four quarters
        # and filtered)
        indexes = [models.Index(fields=["measure", "harm_type", "age_group", "month"],
                                name="reports_dur_slice_idx")]
        verbose_name = _("duration histogram bin")
        verbose_name_plural = _("duration histogram bins")


class BankMonth(models.Model):
    """Sightings first seen in the month per hash bank, by review outcome."""

    month = models.DateField()
    bank_name = models.CharField(max_length=100)
    matches = models.IntegerField(default=0)
    confirmed = models.IntegerField(default=0)
    rejected = models.IntegerField(default=0)

    class Meta:
        verbose_name = _("hash list month summary")
        verbose_name_plural = _("hash list month summaries")


class CounselingMeasure(models.TextChoices):
    CONTACTS = "contacts", "counseling contacts by channel and hour"
    CASES = "cases", "cases opened"


class CounselingMonth(models.Model):
    """The counseling team's counts per month, victim age group and harm type (`ALL_AGES`,
    `ALL_HARMS`: every contact or case once): contacts by channel and hour of the day (the
    center's time zone), and cases opened (`channel` blank, `hour` 0)."""

    month = models.DateField()
    measure = models.CharField(max_length=8, choices=CounselingMeasure.choices)
    channel = models.CharField(max_length=10, blank=True)
    hour = models.PositiveSmallIntegerField(default=0)
    age_group = models.CharField(max_length=8, blank=True)
    harm_type = models.CharField(max_length=16, blank=True)
    n = models.IntegerField()

    class Meta:
        indexes = [models.Index(fields=["measure", "harm_type", "age_group", "month"],
                                name="reports_couns_slice_idx")]
        verbose_name = _("counseling month summary")
        verbose_name_plural = _("counseling month summaries")


class ExposureMonth(models.Model):
    """Unblurred views and seconds of unblurred viewing per reviewer per ISO week of the
    month: a week that spans two months has a row in each, and the two add up to the week."""

    month = models.DateField()
    #: the Monday of the ISO week (the center's time zone)
    week = models.DateField(null=True)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                              null=True, related_name="+")
    views = models.IntegerField(default=0)
    #: `erasure.exposure.counted_seconds` summed (a viewing without a report counts the
    #: documented default)
    seconds = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("exposure month summary")
        verbose_name_plural = _("exposure month summaries")


class PeriodTables(models.Model):
    """The annual (ministry-format) tables of a closed period, as computed, per language
    (the row labels are translated when a table is built). Dropped with the summary of any
    month inside the period (`summary.invalidate`)."""

    start = models.DateTimeField()
    end = models.DateTimeField()
    language = models.CharField(max_length=10)
    tables = models.JSONField()
    built_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["start", "end", "language"],
                                               name="reports_period_tables_unique")]
        verbose_name = _("period tables state")
        verbose_name_plural = _("period tables states")
