"""Fixed choice lists of the expert registry: languages offered and Seoul districts served."""

from __future__ import annotations

from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

LANGUAGE_CHOICES = [
    ("ko", _("Korean")),
    ("en", _("English")),
    ("zh", _("Chinese")),
    ("vi", _("Vietnamese")),
    ("ja", _("Japanese")),
    ("ru", _("Russian")),
    ("th", _("Thai")),
    ("tl", _("Tagalog")),
    ("mn", _("Mongolian")),
]

# The 25 districts (gu) of Seoul, stored by their romanised names.
SEOUL_DISTRICTS = [
    ("gangnam", "강남구"), ("gangdong", "강동구"), ("gangbuk", "강북구"), ("gangseo", "강서구"),
    ("gwanak", "관악구"), ("gwangjin", "광진구"), ("guro", "구로구"), ("geumcheon", "금천구"),
    ("nowon", "노원구"), ("dobong", "도봉구"), ("dongdaemun", "동대문구"), ("dongjak", "동작구"),
    ("mapo", "마포구"), ("seodaemun", "서대문구"), ("seocho", "서초구"), ("seongdong", "성동구"),
    ("seongbuk", "성북구"), ("songpa", "송파구"), ("yangcheon", "양천구"),
    ("yeongdeungpo", "영등포구"), ("yongsan", "용산구"), ("eunpyeong", "은평구"),
    ("jongno", "종로구"), ("jung", "중구"), ("jungnang", "중랑구"),
]
REGION_LABELS = dict(SEOUL_DISTRICTS)
LANGUAGE_LABELS = dict(LANGUAGE_CHOICES)

WEEKDAY_CHOICES = [
    (0, _("Monday")), (1, _("Tuesday")), (2, _("Wednesday")), (3, _("Thursday")),
    (4, _("Friday")), (5, _("Saturday")), (6, _("Sunday")),
]

DURATIONS = (15, 30, 45, 60, 90, 120)


def duration_choices() -> list[tuple[int, str]]:
    """Translated when a form renders, not at import."""
    return [(m, gettext("%(minutes)d minutes") % {"minutes": m}) for m in DURATIONS]
