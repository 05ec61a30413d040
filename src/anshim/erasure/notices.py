# ruff: noqa: RUF001 (full-width punctuation is correct in the Chinese notice)
"""Takedown notice templates (Korean, English, Japanese, Chinese).

`string.Template` placeholders: $platform, $legal_basis, $reference, $urls, $evidence,
$center, $deadline. A platform may override the Korean or English template. Notices name the
case by request reference only: never the victim.
"""

from __future__ import annotations

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

$center 는 디지털 성범죄 피해자 지원기관으로서, 귀사 서비스에 게시된 아래 불법촬영물 등의 삭제를
요청합니다. 게시물은 피해자 본인의 동의 없이 유포된 것으로, 피해자가 삭제 지원을 요청하였습니다.

법적 근거: $legal_basis

삭제 대상 URL:
$urls

증거 기록: $evidence

$deadline 까지 삭제 조치 결과를 회신하여 주시기 바랍니다. 회신 시 요청번호 $reference 를 기재해
주십시오.
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
""",
    "ja": """$platform ご担当者様

$center はデジタル性犯罪被害者の支援機関です。被害者の依頼により、本人の同意なく公開された以下の
コンテンツの削除をお願いいたします。

法的根拠: $legal_basis

削除対象URL:
$urls

証拠記録: $evidence

$deadline までに削除の上、依頼番号 $reference を記載してご返信ください。
""",
    "zh": """$platform 信任与安全团队：

$center 是数字性犯罪受害者支援机构。应受害者请求，我们要求贵方删除以下未经当事人同意而发布的内容。

法律依据：$legal_basis

需删除的网址：
$urls

证据记录：$evidence

请于 $deadline 前删除并回复，回复时请注明编号 $reference。
""",
}

CENTER_NAME = {"ko": "안심 원스톱 지원센터", "en": "Anshim one-stop support center",
               "ja": "Anshim ワンストップ支援センター", "zh": "Anshim 一站式支援中心"}


def render_notice(language: str, *, platform: str, legal_basis: str, reference: str,
                  urls: list[str], evidence: list[str], deadline: str,
                  custom_template: str = "") -> tuple[str, str]:
    """(subject, body) of a notice in `language` (ko/en/ja/zh; anything else falls back to en)."""
    lang = language if language in BODIES else "en"
    values = {
        "platform": platform, "legal_basis": legal_basis or DEFAULT_LEGAL_BASIS[lang],
        "reference": reference, "urls": "\n".join(f"- {u}" for u in urls),
        "evidence": ", ".join(evidence) or "-", "center": CENTER_NAME[lang],
        "deadline": deadline,
    }
    body = Template(custom_template or BODIES[lang]).safe_substitute(values)
    subject = Template(SUBJECTS[lang]).safe_substitute(values)
    return subject, body
