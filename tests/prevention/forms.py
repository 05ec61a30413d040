"""XLSForms for the tests, built as a KoboToolbox user would author them."""

from __future__ import annotations

import io

KO, EN = "label::Korean (ko)", "label::English (en)"


def kobo_style_form() -> bytes:
    """A real-world-style form: metadata rows (start, end, deviceid, today), a consent gate,
    groups with skip logic, a select_multiple driving a follow-up, a constraint with messages
    in both languages, a cascading select (choice_filter), a date and a note."""
    import openpyxl

    wb = openpyxl.Workbook()
    s = wb.active
    s.title = "survey"
    s.append(["type", "name", KO, EN, "hint::English (en)", "required", "relevant",
              "constraint", "constraint_message::Korean (ko)", "constraint_message::English (en)",
              "choice_filter", "appearance"])
    for row in [
        ["start", "start"], ["end", "end"], ["today", "today"], ["deviceid", "deviceid"],
        ["select_one yn", "consent", "설문에 참여하겠습니까?", "Do you agree to take part?", "",
         "yes"],
        ["begin_group", "about", "나에 대하여", "About you", "", "", "${consent} = 'yes'"],
        ["integer", "age", "나이", "Age", "in years", "yes", "", ". >= 9 and . <= 19",
         "9~19세", "Age 9 to 19"],
        ["select_one sex", "sex", "성별", "Sex", "", "yes"],
        ["select_one region", "region", "시·도", "Region", "", ""],
        ["select_one district", "district", "구", "District", "", "", "${region} != ''", "",
         "", "", "region=${region}"],
        ["end_group", "about"],
        ["begin_group", "online", "온라인 경험", "Online", "", "", "${consent} = 'yes'"],
        ["select_multiple apps", "apps", "사용하는 앱", "Apps you use", "", "yes", "", "", "",
         "", "", "minimal"],
        ["select_one yn", "contacted", "모르는 사람이 연락한 적?", "Contacted by a stranger?",
         "", "yes", "count-selected(${apps}) > 0 and not(selected(${apps}, 'none'))"],
        ["date", "when", "언제?", "When?", "", "", "${contacted} = 'yes'",
         ". <= today()", "미래 날짜는 안 돼요", "Not in the future"],
        ["decimal", "hours", "하루 사용 시간", "Hours a day", "", "", "", ". >= 0 and . <= 24"],
        ["text", "story", "무슨 일이 있었나요?", "What happened?", "", "",
         "${contacted} = 'yes'"],
        ["end_group", "online"],
        ["note", "bye", "감사합니다", "Thank you"],
    ]:
        s.append(row)
    c = wb.create_sheet("choices")
    c.append(["list_name", "name", KO, EN, "region"])
    for row in [
        ["yn", "yes", "예", "Yes"], ["yn", "no", "아니요", "No"],
        ["sex", "female", "여", "Female"], ["sex", "male", "남", "Male"],
        ["region", "seoul", "서울", "Seoul"], ["region", "busan", "부산", "Busan"],
        ["district", "mapo", "마포구", "Mapo-gu", "seoul"],
        ["district", "jongno", "종로구", "Jongno-gu", "seoul"],
        ["district", "haeundae", "해운대구", "Haeundae-gu", "busan"],
        ["apps", "kakao", "카카오톡", "KakaoTalk"], ["apps", "insta", "인스타그램", "Instagram"],
        ["apps", "game", "게임", "Games"], ["apps", "none", "없음", "None"],
    ]:
        c.append(row)
    st = wb.create_sheet("settings")
    st.append(["form_title", "form_id", "version", "default_language"])
    st.append(["청소년 온라인 경험 조사", "youth_online", "2026110101", "Korean (ko)"])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def sheet(rows: list[list[str]], choices: list[list[str]] | None = None) -> bytes:
    import openpyxl

    wb = openpyxl.Workbook()
    s = wb.active
    s.title = "survey"
    for r in rows:
        s.append(r)
    if choices:
        c = wb.create_sheet("choices")
        for r in choices:
            c.append(r)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()
