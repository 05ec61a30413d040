"""The case workflow in the staff UI (issue 19 item 11): the status panel on the case page, the
confirmations, the supervisors' closure queue, refusals as pages (never a 500), Korean text,
query counts and the case list's status filter."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from anshim.cases import transitions
from anshim.cases.models import Case, CaseStatus, StatusChange, StatusChangeKind

pytestmark = pytest.mark.django_db

S = CaseStatus
QUEUE = "/staff/cases/closures/"


def _move_url(case: Any) -> str:
    return reverse("cases:status_move", kwargs={"code": case.code})


def _decide_url(case: Any) -> str:
    return reverse("cases:closure_decide", kwargs={"code": case.code})


def _detail(case: Any) -> str:
    return reverse("cases:detail", kwargs={"code": case.code})


def test_case_page_offers_the_moves_in_korean(login_client: Any, make_case: Any,
                                              counselor: Any) -> None:
    case = make_case()
    body = login_client(counselor).get(_detail(case)).content.decode()
    assert '<dd id="case-status">분류 완료</dd>' in body
    assert "“지원 중” 상태로 변경" in body and "종결 요청…" in body
    assert f'name="expected" value="{S.TRIAGED}"' in body
    # The edit form no longer carries the status.
    assert 'name="edit-status"' not in body
    en = login_client(counselor).get(_detail(case), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Move to “In support”" in en and "Request closure…" in en


def test_a_plain_move_happens_at_once(login_client: Any, make_case: Any,
                                      counselor: Any) -> None:
    case = make_case()
    c = login_client(counselor)
    response = c.post(_move_url(case), {"to": S.IN_SUPPORT, "expected": S.TRIAGED})
    assert response.status_code == 302 and response["Location"] == _detail(case)
    assert Case.objects.get(pk=case.pk).status == S.IN_SUPPORT
    page = c.get(_detail(case)).content.decode()
    assert "상태가 변경되었습니다." in page
    assert "상태 변경: 분류 완료 → 지원 중" in page  # the timeline, in Korean


def test_closure_request_asks_first_then_the_supervisor_approves(
        login_client: Any, make_case: Any, counselor: Any, supervisor: Any) -> None:
    case = make_case()
    c = login_client(counselor)
    confirm = c.post(_move_url(case), {"to": S.CLOSING, "expected": S.TRIAGED})
    assert confirm.status_code == 200
    text = confirm.content.decode()
    assert f"사례 {case.code}의 종결을 슈퍼바이저에게 요청할까요?" in text
    assert Case.objects.get(pk=case.pk).status == S.TRIAGED  # nothing yet
    done = c.post(_move_url(case), {"to": S.CLOSING, "expected": S.TRIAGED, "confirmed": "1",
                                    "reason": "Support finished."})
    assert done.status_code == 302
    assert Case.objects.get(pk=case.pk).status == S.CLOSING
    # The same click again (a double submit): refused, explained, not recorded twice.
    again = c.post(_move_url(case), {"to": S.CLOSING, "expected": S.TRIAGED, "confirmed": "1"})
    assert again.status_code == 409 and "아무것도 변경되지 않았습니다" in again.content.decode()
    assert StatusChange.objects.filter(
        case=case, kind=StatusChangeKind.CLOSURE_REQUESTED).count() == 1
    # The counselor has no approve button and cannot post one.
    page = c.get(_detail(case)).content.decode()
    assert "종결 요청됨" in page and "종결 승인</button>" not in page
    assert c.post(_decide_url(case), {"decision": "approve", "confirmed": "1"}).status_code \
        == 403
    assert c.get(QUEUE).status_code == 403

    s = login_client(supervisor, Client())
    queue = s.get(QUEUE).content.decode()
    assert case.code in queue and "Support finished." in queue and "종결 승인" in queue
    ask = s.post(_decide_url(case), {"decision": "approve", "next": "queue"})
    assert ask.status_code == 200 and f"사례({case.code})를 종결할까요?" in ask.content.decode()
    assert Case.objects.get(pk=case.pk).status == S.CLOSING
    approved = s.post(_decide_url(case), {"decision": "approve", "next": "queue",
                                          "confirmed": "1"})
    assert approved.status_code == 302 and approved["Location"] == QUEUE
    assert Case.objects.get(pk=case.pk).status == S.CLOSED
    assert "대기 중인 종결 요청이 없습니다." in s.get(QUEUE).content.decode()
    # A second approval (another tab): a clear refusal, no 500.
    twice = s.post(_decide_url(case), {"decision": "approve", "confirmed": "1"})
    assert twice.status_code == 409


def test_rejection_asks_for_a_reason(login_client: Any, make_case: Any, counselor: Any,
                                     supervisor: Any) -> None:
    case = make_case()
    transitions.request_closure(counselor, case, expected=S.TRIAGED)
    s = login_client(supervisor)
    ask = s.post(_decide_url(case), {"decision": "reject"})
    assert ask.status_code == 200 and "사례를 계속 진행하는 사유" in ask.content.decode()
    empty = s.post(_decide_url(case), {"decision": "reject", "confirmed": "1", "reason": " "})
    assert empty.status_code == 400 and "사유를 입력하세요." in empty.content.decode()
    assert Case.objects.get(pk=case.pk).status == S.CLOSING
    done = s.post(_decide_url(case), {"decision": "reject", "confirmed": "1",
                                      "reason": "The victim still needs support."})
    assert done.status_code == 302
    assert Case.objects.get(pk=case.pk).status == S.TRIAGED
    page = s.get(_detail(case)).content.decode()
    assert "종결 반려: 사례가 이전 상태로 돌아갔습니다: 종결 승인 대기 → 분류 완료" in page


def test_own_request_is_refused_on_the_page(login_client: Any, make_case: Any,
                                            supervisor: Any) -> None:
    case = make_case()
    transitions.request_closure(supervisor, case, expected=S.TRIAGED)
    s = login_client(supervisor)
    assert "본인의 요청입니다" in s.get(QUEUE).content.decode()
    refused = s.post(_decide_url(case), {"decision": "approve", "confirmed": "1"})
    assert refused.status_code == 403 and "다른 슈퍼바이저가 결정합니다" in \
        refused.content.decode()
    assert Case.objects.get(pk=case.pk).status == S.CLOSING


def test_reopen_asks_for_a_reason(login_client: Any, make_case: Any, counselor: Any,
                                  make_user: Any) -> None:
    case = make_case()
    transitions.request_closure(counselor, case, expected=S.TRIAGED)
    transitions.approve_closure(make_user("supervisor"), case)
    c = login_client(counselor)
    page = c.get(_detail(case)).content.decode()
    assert "“지원 중” 상태로 재개…" in page and "“분류 완료” 상태로 재개…" in page
    ask = c.post(_move_url(case), {"to": S.IN_SUPPORT, "expected": S.CLOSED})
    assert ask.status_code == 200 and "사례를 재개하는 사유" in ask.content.decode()
    empty = c.post(_move_url(case), {"to": S.IN_SUPPORT, "expected": S.CLOSED,
                                     "confirmed": "1"})
    assert empty.status_code == 400
    bad = c.post(_move_url(case), {"to": S.ERASURE, "expected": S.CLOSED, "confirmed": "1",
                                   "reason": "new upload"})
    assert bad.status_code == 400
    done = c.post(_move_url(case), {"to": S.IN_SUPPORT, "expected": S.CLOSED,
                                    "confirmed": "1", "reason": "New upload found."})
    assert done.status_code == 302 and Case.objects.get(pk=case.pk).status == S.IN_SUPPORT


@pytest.mark.parametrize("data", [
    {}, {"to": "zzz", "expected": S.TRIAGED}, {"to": S.CLOSED, "expected": S.TRIAGED},
    {"to": S.NEW, "expected": S.TRIAGED}, {"to": S.IN_SUPPORT, "expected": S.ON_HOLD},
    {"to": S.IN_SUPPORT, "expected": S.TRIAGED, "reason": "x" * 5000},
])
def test_bad_moves_are_refused_not_500(login_client: Any, make_case: Any, counselor: Any,
                                       data: dict[str, str]) -> None:
    case = make_case()
    response = login_client(counselor).post(_move_url(case), data)
    assert response.status_code in (400, 409)
    assert Case.objects.get(pk=case.pk).status == S.TRIAGED
    assert login_client(counselor).get(_move_url(case)).status_code == 405


def test_wrong_roles_get_no_buttons_and_no_moves(login_client: Any, make_case: Any,
                                                 make_user: Any) -> None:
    case = make_case()
    eraser = make_user("erasure")
    c = login_client(eraser)
    page = c.get(_detail(case)).content.decode()
    assert 'name="expected"' not in page
    assert c.post(_move_url(case), {"to": S.IN_SUPPORT, "expected": S.TRIAGED}).status_code \
        == 403
    assert c.get(QUEUE).status_code == 403
    assert Case.objects.get(pk=case.pk).status == S.TRIAGED


def test_closure_queue_queries_do_not_grow(login_client: Any, make_case: Any, counselor: Any,
                                           supervisor: Any,
                                           django_assert_max_num_queries: Any) -> None:
    s = login_client(supervisor)

    def ask(n: int) -> None:
        for _ in range(n):
            case = make_case()
            transitions.request_closure(counselor, case, expected=S.TRIAGED, note="done")

    ask(2)
    s.get(QUEUE)  # warm the session and the translations
    with django_assert_max_num_queries(14) as few:
        assert s.get(QUEUE).status_code == 200
    ask(6)
    with django_assert_max_num_queries(len(few.captured_queries)):
        body = s.get(QUEUE).content.decode()
    assert body.count("종결 승인</button>") == 8


def test_queue_paginates(login_client: Any, make_case: Any, counselor: Any,
                         supervisor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from anshim.cases import views_status

    monkeypatch.setattr(views_status, "QUEUE_PAGE_SIZE", 2)
    for _ in range(3):
        case = make_case()
        transitions.request_closure(counselor, case, expected=S.TRIAGED)
    s = login_client(supervisor)
    first = s.get(QUEUE).content.decode()
    assert first.count("종결 승인</button>") == 2 and "?page=2" in first
    assert s.get(QUEUE + "?page=2").content.decode().count("종결 승인</button>") == 1
    assert s.get(QUEUE + "?page=zzz").status_code == 200


def test_case_page_of_a_closing_case_costs_constant_queries(
        login_client: Any, make_case: Any, counselor: Any, supervisor: Any,
        django_assert_max_num_queries: Any) -> None:
    case = make_case()
    s = login_client(supervisor)
    s.get(_detail(case))
    with django_assert_max_num_queries(80) as before:
        s.get(_detail(case))
    transitions.request_closure(counselor, case, expected=S.TRIAGED, note="done")
    # The pending request adds one query (the request and who made it), no more.
    with django_assert_max_num_queries(len(before.captured_queries) + 1):
        body = s.get(_detail(case)).content.decode()
    assert "종결 승인</button>" in body


def test_the_list_filters_by_the_new_statuses(login_client: Any, make_case: Any,
                                              counselor: Any) -> None:
    closing = make_case()
    transitions.request_closure(counselor, closing, expected=S.TRIAGED)
    erasure = make_case()
    transitions.move(counselor, erasure, S.ERASURE, expected=S.TRIAGED)
    c = login_client(counselor)

    def codes(query: str) -> set[str]:
        response = c.get("/staff/cases/" + query)
        assert response.status_code == 200
        return {row.case.code for row in response.context["rows"]}

    assert codes("?status=closing") == {closing.code}
    assert codes("?status=erasure") == {erasure.code}
    assert "종결 승인 대기" in c.get("/staff/cases/").content.decode()


def test_nav_links_the_queue_for_supervisors_only(login_client: Any, counselor: Any,
                                                  supervisor: Any) -> None:
    assert QUEUE in login_client(supervisor).get("/staff/cases/").content.decode()
    assert QUEUE not in login_client(counselor, Client()).get("/staff/cases/").content.decode()
