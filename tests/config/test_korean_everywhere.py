"""No untranslated text in the Korean staff UI (issue 19 item 13).

Every staff page of the role matrix is rendered, as a role allowed to see it, with Korean
active, and its visible text is searched for English: known fragments ("Select an option",
"Where:", Django's own English), any run of English words, and raw codes (audit actions, timeline
event kinds, role codes) shown where a label belongs. Separately every ko catalogue of the project
must translate every msgid (no empty or fuzzy msgstr), and every model must have a Korean
verbose name (the admin index lists them).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.db import transaction
from django.test import Client
from django.utils import translation

from security.test_role_matrix import (  # tests/security: the role matrix
    ADMIN_PAGES,
    PRINCIPALS,
    VIEWS,
    Row,
    World,
    build_world,
    rolled_back,
)

SRC = Path(__file__).resolve().parents[2] / "src" / "anshim"
HANGUL = re.compile(r"[\uac00-\ud7a3]")

# English a Korean page must never show: widget defaults, the portal summary's labels, Django's
# own words where a project template forgot to translate, and words of the staff frame.
FRAGMENTS = (
    "Select an option", "Where:", "Apps or sites:", "Forbidden", "Not Found", "Server Error",
    "Save", "Submit", "Delete", "Cancel", "Search", "Filter", "Next", "Previous", "Page ",
    "Log out", "Sign out", "Sign in", "Home", "Welcome", "Yes", "No ", "Add ", "Change ",
    "View site", "Documentation", "Recent actions", "None available", "Unknown", "required",
    "This field", "Enter a valid", "Choose", "Back", "Status", "Case", "Victim", "Counselor",
)
FRAGMENT_RE = re.compile("|".join(
    rf"(?<![A-Za-z]){re.escape(f.strip())}(?![a-z])" for f in FRAGMENTS))
# Runs of English words: two words or more of three letters or more ("New portal passphrase").
ENGLISH_RUN = re.compile(r"\b[A-Za-z]{3,}(?:[ ,'-]+[A-Za-z]{2,})+\b")
# English that is right in a Korean page: proper names and technical terms.
ALLOWED = re.compile(
    r"\b(Anshim|PDQ|vPDQ|MD5|SHA-?256|TMK|PDF|CSV|XLSX|JSON|API|URL|HTTPS?|TOTP|OTP|"
    r"ThreatExchange|StopNCII|NCMEC|Google Authenticator|e-?mail|E-?mail|XLSForm|ODK|"
    r"Noto|Chromium|iCalendar|ics)\b")
# Data of the role matrix's world that its page functions look up by name (not UI text).
DATA_NAMES = ("Matrix source",)
ROLE_CODES = ("counselor", "erasure", "prevention", "expert", "supervisor", "admin")


class _Text(HTMLParser):
    """The text a reader sees (and hears): text nodes and the attributes screen readers read,
    without scripts, styles and the language switcher's own names."""

    SKIP = {"script", "style", "template", "code", "pre", "textarea"}
    SPOKEN = ("title", "aria-label", "placeholder", "alt")

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta",
            "source", "track", "wbr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._depth = 0
        self._skip_at: int | None = None  # the depth of the element being skipped

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if self._skip_at is None:
            if tag in self.SKIP or a.get("lang") == "en" or "data-raw" in a:
                if tag not in self.VOID:
                    self._skip_at = self._depth
            elif tag == "img" and "/admin/img/" in str(a.get("src", "")):
                # Django's admin search icon has alt="Search" written into its template (not
                # translatable): Django's, left as is.
                pass
            else:
                self.parts.extend(str(a[k]) for k in self.SPOKEN if a.get(k))
                if tag == "input" and a.get("type") in ("submit", "button") and a.get("value"):
                    self.parts.append(str(a["value"]))
        if tag not in self.VOID:
            self._depth += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        self._depth -= 1
        if self._skip_at is not None and self._depth <= self._skip_at:
            self._skip_at = None

    def handle_data(self, data: str) -> None:
        if self._skip_at is None:
            self.parts.append(data)


def visible_text(html: str) -> str:
    p = _Text()
    p.feed(html)
    return re.sub(r"\s+", " ", " ".join(p.parts))


def english_problems(text: str, codes: set[str]) -> list[str]:
    text = re.sub(r"\b(?:https?://|www\.)\S+", " ", text)  # addresses are data, not words
    for name in DATA_NAMES:
        text = text.replace(name, " ")
    found = [m.group(0) for m in FRAGMENT_RE.finditer(text)]
    cleaned = ALLOWED.sub(" ", text)
    found += [m.group(0) for m in ENGLISH_RUN.finditer(cleaned)]
    tokens = set(re.findall(r"[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+|[a-z_]+", text))
    found += sorted(c for c in codes if c in tokens)
    found += [f"role code {r!r}" for r in ROLE_CODES if r in tokens]
    return sorted(set(found))


def _koreanize(w: World) -> None:
    """Data in Korean, so that English on the page can only come from the UI."""
    for i, u in enumerate(w.users.values()):
        type(u).objects.filter(pk=u.pk).update(username=f"u{i}", display_name=f"직원{i}")
    w.case.person.name = "김민지"
    w.case.person.save()
    w.referral.organization = "마포 상담소"
    w.referral.save()
    from anshim.experts.models import Expert, SessionLog

    Expert.objects.update(regions=["마포구"])
    SessionLog.objects.update(summary="상담 기록")
    platform = w.takedown.platform
    platform.name = "소셜"
    platform.save()
    w.takedown.subject = "삭제 요청"
    w.takedown.body = "삭제해 주세요"
    w.takedown.save()


def _codes() -> set[str]:
    from anshim.cases.models import TimelineEvent
    from anshim.security.models import AuditEntry

    return set(AuditEntry.objects.values_list("action", flat=True)) | set(
        TimelineEvent.objects.values_list("kind", flat=True))


def _render(path: Any, rule: Any, login_client: Any) -> list[str]:
    with rolled_back():
        w = build_world()
        _koreanize(w)
        for principal in PRINCIPALS:
            user = w.users[principal]
            user.refresh_from_db()
            if rule(user, w):
                break
        else:
            pytest.skip("no role may open this page")
        client = login_client(user, Client(HTTP_ACCEPT_LANGUAGE="ko"))
        response = client.get(path(w) if callable(path) else path, follow=True)
        # 410: a sighting's media preview that is gone (the matrix world fetched nothing).
        assert response.status_code in (200, 410), response.status_code
        problems = []
        if "text/html" in response.get("Content-Type", ""):
            text = visible_text(response.content.decode())
            problems = [f"{p!r} in …{_around(text, p)}…" for p in english_problems(text, _codes())]
        transaction.set_rollback(True)
    return problems


def _around(text: str, problem: str) -> str:
    needle = problem.removeprefix("role code ").strip("'")
    at = text.find(needle)
    return text[max(0, at - 60): at + len(needle) + 60] if at >= 0 else ""


GET_VIEWS = [r for r in VIEWS if r.method == "GET"]


@pytest.mark.django_db
@pytest.mark.parametrize("row", GET_VIEWS, ids=[r.name for r in GET_VIEWS])
def test_staff_page_is_korean(row: Row, login_client: Any) -> None:
    problems = _render(row.path, row.rule, login_client)
    assert not problems, f"{row.name}: English in the Korean page: {problems}"


@pytest.mark.django_db
@pytest.mark.parametrize("page", [p for p in ADMIN_PAGES if p[0] != "admin:totp devices"
                                  and p[0] != "admin:static devices"],
                         ids=lambda p: p[0])
def test_admin_page_is_korean(page: Any, login_client: Any) -> None:
    _name, _method, path, rule = page
    problems = _render(path, rule, login_client)
    assert not problems, f"{page[0]}: English in the Korean page: {problems}"


def test_fragment_detector_finds_english() -> None:
    """The detector itself: it finds what the issue named, and leaves Korean alone."""
    text = visible_text("<p>상담 <select><option>- Select an option -</option></select></p>"
                        "<p>Where: http</p><p>Apps or sites: x</p><p>저장 <b>사례 코드</b></p>"
                        "<span>case.create</span><td>counselor</td>")
    problems = english_problems(text, {"case.create"})
    assert "Select an option" in problems and "Where:" in problems
    assert "Apps or sites:" in problems and "case.create" in problems
    assert "role code 'counselor'" in problems
    assert english_problems(visible_text("<p>사례 코드 AN-1234 · PDQ 해시</p>"), set()) == []


# --- The catalogues --------------------------------------------------------------------------

def _po_entries(path: Path) -> list[tuple[str, str, bool]]:
    """(msgid, msgstr of every form joined, fuzzy) for each entry of a .po file."""
    entries: list[tuple[str, str, bool]] = []
    msgid: list[str] = []
    msgstr: list[str] = []
    fuzzy = False
    field: list[str] | None = None
    obsolete = False

    def flush() -> None:
        if msgid or msgstr:
            mid = "".join(msgid)
            if mid and not obsolete:
                entries.append((mid, "\x00".join(msgstr), fuzzy))

    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip():
            flush()
            msgid, msgstr, fuzzy, field, obsolete = [], [], False, None, False
        elif line.startswith("#~"):
            obsolete = True
        elif line.startswith("#,"):
            fuzzy = fuzzy or "fuzzy" in line
        elif line.startswith("#"):
            continue
        elif line.startswith("msgid_plural"):
            field = None
        elif line.startswith("msgid "):
            if msgid or msgstr:  # an entry without a blank line before it
                flush()
                msgid, msgstr, fuzzy = [], [], False
            field = msgid
            field.append(_unquote(line[6:]))
        elif line.startswith("msgstr"):
            msgstr.append(_unquote(line.split(" ", 1)[1]))
            field = msgstr
        elif line.startswith('"') and field is not None:
            if field is msgstr:
                msgstr[-1] += _unquote(line)
            else:
                field.append(_unquote(line))
    return entries


def _unquote(s: str) -> str:
    s = s.strip()
    return s[1:-1] if s.startswith('"') and s.endswith('"') else s


CATALOGUES = sorted(SRC.glob("*/locale/ko/LC_MESSAGES/django.po"))


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parts[-5])
def test_catalogue_translates_every_msgid(po: Path) -> None:
    missing = [mid for mid, mstr, fuzzy in _po_entries(po)
               if fuzzy or any(not s for s in mstr.split("\x00"))]
    assert not missing, f"{po}: untranslated or fuzzy: {missing[:20]} ({len(missing)})"
    mo = po.with_suffix(".mo")
    assert mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime - 1, \
        f"{mo} is older than its .po: run compilemessages"


CASE_CODE = "사례 번호"  # the one Korean word for "case code": portal, staff, notices, e-mails
OTHER_WORDS = ("사건 코드", "사건 번호", "사례 코드", "케이스 코드", "케이스 번호", "접수 번호")


def test_one_word_for_case_code() -> None:
    wrong = []
    for po in CATALOGUES:
        for mid, mstr, _fuzzy in _po_entries(po):
            if "case code" in mid.lower() and CASE_CODE not in mstr:
                wrong.append(f"{po.parts[-5]}: {mid!r} → {mstr!r}")
            wrong += [f"{po.parts[-5]}: {w} in {mstr!r}" for w in OTHER_WORDS if w in mstr]
            # A case is 사례 everywhere (staff and portal), never 사건 next to 사례 번호.
            if re.search(r"\bcases?\b", mid, re.IGNORECASE) and "사건" in mstr:
                wrong.append(f"{po.parts[-5]}: 사건 for a case in {mstr!r}")
    assert not wrong, wrong


def test_po_reader_sees_empty_and_fuzzy() -> None:
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".po", delete=False, encoding="utf-8") as f:
        f.write('msgid ""\nmsgstr ""\n"Language: ko\\n"\n\n#, fuzzy\nmsgid "A"\nmsgstr "가"\n\n'
                'msgid "B"\nmsgstr ""\n\nmsgid "C"\nmsgid_plural "Cs"\nmsgstr[0] "다"\n\n'
                'msgid ""\n"D long"\nmsgstr ""\n"라"\n')
    entries = {e[0]: e for e in _po_entries(Path(f.name))}
    Path(f.name).unlink()
    assert entries["A"][2] and entries["B"][1] == "" and entries["C"][1] == "다"
    assert entries["D long"][1] == "라"


def test_every_model_has_a_korean_verbose_name() -> None:
    missing = []
    with translation.override("ko"):
        for model in apps.get_models():
            if not model.__module__.startswith("anshim."):
                continue
            meta = model._meta
            for name in (meta.verbose_name, meta.verbose_name_plural):
                if not HANGUL.search(str(name)):
                    missing.append(f"{meta.label}: {name}")
    with translation.override("ko"):
        missing += [f"app {c.label}: {c.verbose_name}" for c in apps.get_app_configs()
                    if c.name.startswith("anshim.") and not HANGUL.search(str(c.verbose_name))]
    assert not missing, f"models or apps without a Korean verbose name: {missing}"


APPS_WITH_CATALOGUES = sorted(p.parts[-5] for p in CATALOGUES)


@pytest.mark.parametrize("app", APPS_WITH_CATALOGUES)
def test_every_string_in_the_code_is_translated(app: str, tmp_path: Path) -> None:
    """makemessages over a copy of the app: every msgid the code and templates use (not only
    those already in the catalogue) must have a Korean msgstr."""
    import shutil
    import subprocess
    import sys

    if shutil.which("xgettext") is None:
        pytest.skip("GNU gettext (xgettext) is not installed")
    copy = tmp_path / app
    shutil.copytree(SRC / app, copy, ignore=shutil.ignore_patterns("__pycache__", "*.mo"))
    admin = Path(sys.executable).with_name("django-admin")
    done = subprocess.run([str(admin), "makemessages", "-l", "ko", "--no-obsolete",
                           "--no-location"], cwd=copy, capture_output=True, text=True,
                          env={**__import__("os").environ,
                               "DJANGO_SETTINGS_MODULE": "anshim.config.settings"},
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    po = copy / "locale" / "ko" / "LC_MESSAGES" / "django.po"
    # Catalogues are merged at run time (a string of the staff frame may be translated in
    # another app's catalogue), so the test asks Django, in Korean, as a page would.
    from django.utils.translation import trans_real

    catalog = trans_real.translation("ko")._catalog  # type: ignore[attr-defined] # all merged
    missing = []
    for ctx, mid, plural in _msgids(po):
        if "\\u" in mid:  # xgettext keeps Python's \u escapes: not the run-time msgid
            continue
        key = f"{ctx}\x04{mid}" if ctx else mid
        value = catalog[(key, 0)] if plural and (key, 0) in catalog else (
            catalog[key] if key in catalog else "")
        if not value:
            missing.append(mid)
    assert not missing, f"{app}: strings without a Korean translation: {missing}"


def _unescape(s: str) -> str:
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and i + 1 < len(s):
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}.get(s[i + 1], s[i + 1]))
            i += 2
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def _msgids(path: Path) -> list[tuple[str, str, str]]:
    """(context, msgid, msgid_plural) of each entry of a .po file, unescaped."""
    out: list[tuple[str, str, str]] = []
    cur: dict[str, list[str]] = {}
    key = ""
    for line in [*path.read_text(encoding="utf-8").splitlines(), ""]:
        if not line.strip() or line.startswith("#"):
            if "msgid" in cur and "".join(cur["msgid"]):
                out.append((_unescape("".join(cur.get("msgctxt", []))),
                            _unescape("".join(cur["msgid"])),
                            _unescape("".join(cur.get("msgid_plural", [])))))
            if not line.strip():
                cur, key = {}, ""
            continue
        head, _sep, rest = line.partition(" ")
        if head in ("msgctxt", "msgid", "msgid_plural") or head.startswith("msgstr"):
            if head == "msgctxt" and "msgid" in cur:
                cur = {}
            key = head
            cur.setdefault(key, []).append(_unquote(rest))
        elif line.startswith('"') and key:
            cur[key].append(_unquote(line))
    return out


@pytest.mark.django_db
def test_the_expert_notification_is_in_the_experts_language() -> None:
    from anshim.cases.models import Notification
    from anshim.experts.models import Expert
    from anshim.experts.services import assign_expert

    w = build_world()
    other = Expert.objects.get(user=w.users["expert_other"])
    for language, expected in (("ko", "새 배정"), ("en", "New assignment")):
        type(other.user).objects.filter(pk=other.user.pk).update(preferred_language=language)
        other.user.refresh_from_db()
        Notification.objects.all().delete()
        assignment = assign_expert(w.users["supervisor"], w.case, other, "trauma")
        note = Notification.objects.get(recipient=other.user)
        assert note.message.startswith(expected) and w.case.code in note.message, note.message
        assert "trauma" not in note.message  # the need's label, not its code
        assignment.delete()
