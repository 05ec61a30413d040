# ruff: noqa: RUF001 (full-width punctuation is correct in the Chinese notice)
"""Takedown notice templates (Korean, English, Japanese, Chinese).

`string.Template` placeholders: $platform, $legal_basis, $reference, $urls, $evidence,
$center, $deadline, $signature. A platform may override the Korean or English template. Notices
name the case by request reference only: never the victim.

Korean particles depend on the word before them (은/는, 이/가, 을/를, 과/와, 으로/로): a
template writes both forms, "$center은(는)", and `fix_particles` keeps the one the preceding
word's last sound takes ("지원센터는", "TR-000001을": 1 is read 일, which ends in a consonant).
Pure functions, no Django: the center's details are passed in as a `Center`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from string import Template

DEFAULT_LEGAL_BASIS = {
    "ko": "성폭력범죄의 처벌 등에 관한 특례법 제14조, 정보통신망 이용촉진 및 정보보호 등에 관한 "
          "법률 제44조의2 및 제44조의7, 전기통신사업법 제22조의5",
    "en": "Act on Special Cases Concerning the Punishment of Sexual Crimes (Art. 14); Network "
          "Act (Arts. 44-2 and 44-7); Telecommunications Business Act (Art. 22-5)",
    "ja": "韓国 性暴力犯罪の処罰等に関する特例法 第14条、情報通信網法 第44条の2・第44条の7",
    "zh": "韩国《性暴力犯罪处罚特例法》第14条、《信息通信网法》第44条之2及第44条之7",
}

SUBJECTS = {
    "ko": "[삭제 요청 $reference] 불법촬영물 등 삭제 요청",
    "en": "[Removal request $reference] Non-consensual intimate imagery",
    "ja": "[削除依頼 $reference] 同意のない性的画像の削除依頼",
    "zh": "[删除请求 $reference] 未经同意的私密影像删除请求",
}

BODIES = {
    "ko": """$platform 담당자님께,

$center은(는) 디지털 성범죄 피해자 지원기관으로서, 귀사 서비스에 게시된 아래 불법촬영물 등의 삭제를
요청합니다. 게시물은 피해자 본인의 동의 없이 유포된 것으로, 피해자가 삭제 지원을 요청하였습니다.

법적 근거: $legal_basis

삭제 대상 URL:
$urls

증거 기록: $evidence

$deadline까지 삭제 조치 결과를 회신하여 주시기 바랍니다. 회신 시 요청번호 $reference을(를)
기재해 주십시오.

$signature
""",
    "en": """Dear $platform trust and safety team,

$center is a support center for victims of digital sex crimes. On the victim's request we ask
you to remove the following content, which was published without the consent of the person
depicted.

Legal basis: $legal_basis

URLs to remove:
$urls

Evidence records: $evidence

Please remove the content and reply by $deadline, quoting reference $reference.

$signature
""",
    "ja": """$platform ご担当者様

$center はデジタル性犯罪被害者の支援機関です。被害者の依頼により、本人の同意なく公開された以下の
コンテンツの削除をお願いいたします。

法的根拠: $legal_basis

削除対象URL:
$urls

証拠記録: $evidence

$deadline までに削除の上、依頼番号 $reference を記載してご返信ください。

$signature
""",
    "zh": """$platform 信任与安全团队：

$center 是数字性犯罪受害者支援机构。应受害者请求，我们要求贵方删除以下未经当事人同意而发布的内容。

法律依据：$legal_basis

需删除的网址：
$urls

证据记录：$evidence

请于 $deadline 前删除并回复，回复时请注明编号 $reference。

$signature
""",
}

PHONE_LABEL = {"ko": "전화", "en": "Phone", "ja": "電話", "zh": "电话"}


@dataclass(frozen=True)
class Center:
    """Who sends the notice (from the settings, see `takedowns.center_from_settings`)."""

    name_ko: str = "안심 원스톱 지원센터"
    name_en: str = "Anshim one-stop support center"
    phone: str = ""
    #: Free text closing the notice (the specialist's team, an address); may span lines.
    signature: str = ""

    def name(self, language: str) -> str:
        return self.name_ko if language == "ko" else self.name_en

    def signature_block(self, language: str) -> str:
        lines = [self.name(language)]
        if self.phone:
            lines.append(f"{PHONE_LABEL.get(language, PHONE_LABEL['en'])}: {self.phone}")
        if self.signature.strip():
            lines.append(self.signature.strip())
        return "\n".join(lines)


# --- Korean particles -------------------------------------------------------------------------

_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3
#: How digits and Latin letters are read aloud in Korean: does the reading end in a final
#: consonant (batchim), and is it ㄹ (which takes 로, not 으로)?  0 영, 1 일, 3 삼, 6 육, 7 칠,
#: 8 팔; L 엘, M 엠, N 엔, R 알.
_READ_FINAL: dict[str, str] = {"0": "ㅇ", "1": "ㄹ", "3": "ㅁ", "6": "ㄱ", "7": "ㄹ", "8": "ㄹ",
                               "l": "ㄹ", "m": "ㅁ", "n": "ㄴ", "r": "ㄹ"}
_RIEUL_INDEX = 8  # ㄹ among the 28 final-consonant slots of a Hangul syllable (0 = none)
#: (form after a consonant, form after a vowel)
PARTICLES: tuple[tuple[str, str], ...] = (("은", "는"), ("이", "가"), ("을", "를"), ("과", "와"))
_PAIR_RE = re.compile(
    r"(?P<word>[0-9A-Za-z\uac00-\ud7a3])(?P<pair>"
    + "|".join(f"{re.escape(a)}\\({re.escape(b)}\\)|{re.escape(b)}\\({re.escape(a)}\\)"
               for a, b in PARTICLES)
    + r"|\(으\)로)")


def final_consonant(word: str) -> str:
    """The last sound of `word` as Korean reads it: "" (a vowel), "ㄹ" or "C" (another
    consonant). Hangul by its syllable block; digits and Latin letters as read aloud."""
    last = word.rstrip()[-1:] if word.strip() else ""
    if not last:
        return ""
    code = ord(last)
    if _HANGUL_FIRST <= code <= _HANGUL_LAST:
        final = (code - _HANGUL_FIRST) % 28
        return "" if final == 0 else ("ㄹ" if final == _RIEUL_INDEX else "C")
    reading = _READ_FINAL.get(last.lower(), "")
    return "ㄹ" if reading == "ㄹ" else ("C" if reading else "")


def particle(word: str, consonant_form: str, vowel_form: str) -> str:
    """The particle `word` takes: particle("센터", "은", "는") == "는"."""
    return consonant_form if final_consonant(word) else vowel_form


def with_particle(word: str, consonant_form: str, vowel_form: str) -> str:
    return word + particle(word, consonant_form, vowel_form)


def fix_particles(text: str) -> str:
    """Resolve every "은(는)", "이(가)", "을(를)", "과(와)", "(으)로" by the word before it."""
    def choose(m: re.Match[str]) -> str:
        word, pair = m.group("word"), m.group("pair")
        final = final_consonant(word)
        if pair == "(으)로":
            return word + ("으로" if final == "C" else "로")
        for consonant_form, vowel_form in PARTICLES:
            if pair in (f"{consonant_form}({vowel_form})", f"{vowel_form}({consonant_form})"):
                return word + (consonant_form if final else vowel_form)
        return m.group(0)

    return _PAIR_RE.sub(choose, text)


def render_notice(language: str, *, platform: str, legal_basis: str, reference: str,
                  urls: list[str], evidence: list[str], deadline: str,
                  custom_template: str = "", center: Center | None = None) -> tuple[str, str]:
    """(subject, body) of a notice in `language` (ko/en/ja/zh; anything else falls back to en)."""
    lang = language if language in BODIES else "en"
    center = center or Center()
    values = {
        "platform": platform, "legal_basis": legal_basis or DEFAULT_LEGAL_BASIS[lang],
        "reference": reference, "urls": "\n".join(f"- {u}" for u in urls),
        "evidence": ", ".join(evidence) or "-", "center": center.name(lang),
        "deadline": deadline, "signature": center.signature_block(lang),
    }
    body = Template(custom_template or BODIES[lang]).safe_substitute(values)
    subject = Template(SUBJECTS[lang]).safe_substitute(values)
    if lang == "ko":
        body, subject = fix_particles(body), fix_particles(subject)
    return subject, body
