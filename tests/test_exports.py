"""Exports of a type's decisions: the audit trail (CSV) and the dataset (JSONL), on the page and in the API.

Items are made directly (a run, its pending feedback, the item and its gate decision, as the provider would) and
decided through the product's services, so every export row comes from the real decision paths: an edit, a
rejection, a four-eyes approval, a bulk approval, an expiry and an adjudicated disagreement.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, datetime, timedelta
from typing import Any

import jsonschema
import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviewconsole.autonomy.exports import AUDIT_COLUMNS, FORMULA_PREFIXES, DatasetLine, csv_cell
from reviewconsole.autonomy.models import GateDecision
from reviewconsole.autonomy.rollup import day_start
from reviewconsole.autonomy.services import gate_decision_attach, policy_update
from reviewconsole.engine.models import FlowRun, PendingFeedback, RunStatus
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.reviews.models import Decision, ReviewItem, SecondReview
from reviewconsole.reviews.reliability import second_review_adjudicate, second_review_give
from reviewconsole.reviews.roles import role_grant
from reviewconsole.reviews.services import decide, decide_bulk, review_items_expire_overdue
from tests.people import client_for, user_in_role

pytestmark = pytest.mark.django_db

# Types no flow declares: their items are checked against no model, so any JSON object is an edit.
TYPE, OTHER = "memo", "note"
OUTPUT = {"title": "Quarterly memo", "amount": 120, "tags": ["q3"]}


def make_item(output_type: str = TYPE, *, reason: str = "low_confidence", text: str = "memo input") -> ReviewItem:
    """A paused run's review item with its gate decision, as the provider leaves it."""
    run = FlowRun.objects.create(flow_name="memo_flow", status=RunStatus.WAITING_REVIEW, inputs={"text": text})
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
    item = ReviewItem.objects.create(
        run=run,
        pending=pending,
        method="review",
        output_type=output_type,
        reason=reason,
        confidence=0.62,
        output=OUTPUT,
        outcomes=["approved", "rejected"],
    )
    gate_decision_attach(item=item)
    return item


@pytest.fixture
def rita():
    return user_in_role("rita", "reviewer", TYPE)


@pytest.fixture
def sam():
    return user_in_role("sam", "reviewer", TYPE)


@pytest.fixture
def mona():
    return user_in_role("mona", "manager")


def body(response: Any) -> str:
    assert response.streaming, "an export must stream"
    return b"".join(response.streaming_content).decode()


def audit_rows(client: Any, output_type: str = TYPE, **query: str) -> list[dict[str, str]]:
    response = client.get(reverse("autonomy:export_audit", args=[output_type]), query)
    assert response.status_code == 200, response.content
    return list(csv.DictReader(io.StringIO(body(response))))


def dataset_lines(client: Any, output_type: str = TYPE, **query: str) -> list[dict[str, Any]]:
    response = client.get(reverse("autonomy:export_dataset", args=[output_type]), query)
    assert response.status_code == 200
    schema = DatasetLine.model_json_schema()
    lines = []
    for line in body(response).splitlines():
        DatasetLine.model_validate_json(line)
        parsed = json.loads(line)
        jsonschema.validate(parsed, schema)
        lines.append(parsed)
    return lines


# ---------------------------------------------------------------- the audit trail


def test_audit_has_a_row_per_decision_with_who_when_why_what_changed_and_how_long(rita, sam, mona):
    approved, edited, rejected, four_eyes = make_item(), make_item(), make_item(), make_item(reason="high_value")
    decide(item_id=approved.id, user=rita, outcome="approved")
    decide(item_id=edited.id, user=rita, outcome="approved", edited_output={**OUTPUT, "amount": 150})
    decide(item_id=rejected.id, user=sam, outcome="rejected", reason_code="wrong_data", comment="Not a memo.")
    decide(item_id=four_eyes.id, user=rita, outcome="approved")  # the first approval: nothing decided yet
    decide(item_id=four_eyes.id, user=sam, outcome="approved")
    Decision.objects.filter(item=edited).update(handling_seconds=42.5)
    GateDecision.objects.filter(review_item=edited).update(flow_version="v7", model="demo")

    rows = {row["item_id"]: row for row in audit_rows(client_for(mona))}

    assert list(rows[str(approved.id)]) == list(AUDIT_COLUMNS)
    assert set(rows) == {str(item.id) for item in (approved, edited, rejected, four_eyes)}
    decision = Decision.objects.get(item=edited)
    row = rows[str(edited.id)]
    assert row["decision_id"] == str(decision.id)
    assert row["reviewer"] == "rita" and row["outcome"] == "approved" and row["edited"] == "True"
    assert datetime.fromisoformat(row["decided_at"].replace("Z", "+00:00")) == decision.at
    assert row["decided_at"].endswith("Z")
    assert json.loads(row["diff"]) == [{"path": "amount", "before": 120, "after": 150}]
    assert " " not in row["diff"]  # compact
    assert float(row["handling_seconds"]) == 42.5
    assert (row["flow_version"], row["model"], row["verdict"]) == ("v7", "demo", "incorrect")
    assert row["run_id"] == str(edited.run_id) and row["output_type"] == TYPE
    assert row["review_reason"] == "low_confidence" and row["review_reason_label"] == "Low confidence"

    row = rows[str(rejected.id)]
    assert (row["reviewer"], row["outcome"], row["reject_reason"], row["comment"]) == (
        "sam",
        "rejected",
        "wrong_data",
        "Not a memo.",
    )
    assert row["verdict"] == "incorrect" and row["diff"] == "" and row["handling_seconds"] == ""

    row = rows[str(four_eyes.id)]
    assert (row["reviewer"], row["four_eyes_first_approver"], row["review_reason"]) == ("sam", "rita", "high_value")
    assert row["four_eyes_first_at"].endswith("Z")
    assert rows[str(approved.id)]["four_eyes_first_approver"] == ""
    assert rows[str(approved.id)]["verdict"] == "correct" and rows[str(approved.id)]["edited"] == "False"
    # Oldest decision first.
    assert [row["item_id"] for row in rows.values()] == [
        str(item_id) for item_id in Decision.objects.order_by("at", "id").values_list("item_id", flat=True)
    ]


def test_audit_shows_marks_expiry_and_adjudication(rita, sam, mona):
    bulk, expiring, disputed = make_item(), make_item(), make_item()
    decide_bulk(item_ids=[bulk.id], user=rita, output_type=TYPE)
    ReviewItem.objects.filter(id=expiring.id).update(expires_at=timezone.now() - timedelta(minutes=1))
    assert review_items_expire_overdue() == 1
    decide(item_id=disputed.id, user=rita, outcome="approved")
    SecondReview.objects.create(item=disputed, output_type=TYPE, first_user=rita)
    second_review_give(item_id=disputed.id, user=sam, outcome="rejected")
    second_review_adjudicate(item_id=disputed.id, user=mona, upheld="second", note="Not ours.")

    rows = {row["item_id"]: row for row in audit_rows(client_for(mona))}

    assert rows[str(bulk.id)]["mark"] == "bulk"
    assert rows[str(expiring.id)]["expired"] == "True" and rows[str(expiring.id)]["reviewer"] == ""
    assert rows[str(expiring.id)]["verdict"] == ""
    row = rows[str(disputed.id)]
    assert (row["outcome"], row["second_review"], row["adjudicated_for"], row["adjudicated_outcome"]) == (
        "approved",
        "adjudicated",
        "second",
        "rejected",
    )
    assert row["adjudicated_by"] == "mona" and row["verdict"] == "incorrect"


@pytest.mark.parametrize("prefix", FORMULA_PREFIXES)
def test_a_cell_starting_like_a_formula_is_neutralized(prefix):
    assert csv_cell(f"{prefix}cmd|' /C calc'!A0") == f"'{prefix}cmd|' /C calc'!A0"
    assert csv_cell(f"safe {prefix}") == f"safe {prefix}"
    assert csv_cell(12.5) == 12.5


def test_reviewer_text_in_the_audit_cannot_run_as_a_formula(rita, mona):
    item = make_item()
    decide(item_id=item.id, user=rita, outcome="rejected", reason_code="other", comment='=HYPERLINK("http://x")')
    evil = user_in_role("@admin", "reviewer", TYPE)
    decide(item_id=make_item().id, user=evil, outcome="approved")
    rows = audit_rows(client_for(mona))
    assert rows[0]["comment"] == '\'=HYPERLINK("http://x")'
    assert rows[1]["reviewer"] == "'@admin"


# ---------------------------------------------------------------- the dataset


def test_dataset_lines_validate_and_carry_input_output_correction_and_verdict(rita, sam, mona):
    approved, edited, rejected = make_item(text="a"), make_item(text="b"), make_item(text="c")
    decide(item_id=approved.id, user=rita, outcome="approved")
    decide(item_id=edited.id, user=rita, outcome="approved", edited_output={**OUTPUT, "title": "Q3 memo"})
    decide(item_id=rejected.id, user=sam, outcome="rejected", reason_code="incomplete")

    lines = {line["item_id"]: line for line in dataset_lines(client_for(mona))}

    assert lines[str(approved.id)]["input"] == {"text": "a"}
    assert lines[str(approved.id)]["output"] == OUTPUT
    assert lines[str(approved.id)]["corrected_output"] == OUTPUT
    assert lines[str(approved.id)]["verdict"] == "correct" and lines[str(approved.id)]["counted"] is True
    assert lines[str(edited.id)]["corrected_output"] == {**OUTPUT, "title": "Q3 memo"}
    assert lines[str(edited.id)]["verdict"] == "incorrect"
    line = lines[str(rejected.id)]
    assert (line["corrected_output"], line["verdict"], line["reject_reason"]) == (None, "incorrect", "incomplete")
    assert line["run_id"] == str(rejected.run_id) and line["output_type"] == TYPE


def test_a_decided_then_adjudicated_item_carries_the_upheld_verdict(rita, sam, mona):
    overruled, upheld = make_item(), make_item()
    for item in (overruled, upheld):
        decide(item_id=item.id, user=rita, outcome="approved")
        SecondReview.objects.create(item=item, output_type=TYPE, first_user=rita)
        second_review_give(item_id=item.id, user=sam, outcome="rejected")
    second_review_adjudicate(item_id=overruled.id, user=mona, upheld="second")
    second_review_adjudicate(item_id=upheld.id, user=mona, upheld="first")

    lines = {line["item_id"]: line for line in dataset_lines(client_for(mona))}

    line = lines[str(overruled.id)]
    assert (line["outcome"], line["verdict"], line["corrected_output"], line["adjudicated"]) == (
        "rejected",
        "incorrect",
        None,
        True,
    )
    line = lines[str(upheld.id)]
    assert (line["outcome"], line["verdict"], line["corrected_output"]) == ("approved", "correct", OUTPUT)
    # The same verdict the autonomy figures count.
    assert GateDecision.objects.get(review_item=overruled).verdict == "incorrect"


def test_a_marked_approval_the_policy_leaves_out_is_not_counted(rita, mona):
    policy_update(output_type=TYPE, changes={"exclude_marked_approvals": True}, by=None, reason="test")
    item = make_item()
    decide_bulk(item_ids=[item.id], user=rita, output_type=TYPE)
    [line] = dataset_lines(client_for(mona))
    assert (line["verdict"], line["counted"]) == ("correct", False)


# ---------------------------------------------------------------- filters, scope and input


def test_the_date_range_and_the_type_filter_the_rows(rita, mona):
    items = [make_item() for _ in range(3)]
    other = make_item(OTHER)
    for item in [*items, other]:
        decide(item_id=item.id, user=rita if item.output_type == TYPE else mona, outcome="approved")
    days = [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    for item, day in zip(items, days, strict=True):
        # Late in the day: the range covers whole local days, both ends included.
        Decision.objects.filter(item=item).update(at=day_start(day) + timedelta(hours=23, minutes=59))
    client = client_for(mona)

    def exported(**query: str) -> list[str]:
        return [row["item_id"] for row in audit_rows(client, **query)]

    assert exported(date_from="2026-03-02", date_to="2026-03-02") == [str(items[1].id)]
    assert exported(date_from="2026-03-02") == [str(items[1].id), str(items[2].id)]
    assert exported(date_to="2026-03-01") == [str(items[0].id)]
    assert exported() == [str(item.id) for item in items]
    assert [line["item_id"] for line in dataset_lines(client, date_to="2026-03-02")] == [
        str(items[0].id),
        str(items[1].id),
    ]
    assert [row["item_id"] for row in audit_rows(client, OTHER)] == [str(other.id)]


@pytest.mark.parametrize(
    ("query", "problem"),
    [
        ({"date_from": "2026-13-01"}, "Enter a valid date"),
        ({"date_to": "yesterday"}, "Enter a valid date"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "The start date 2026-03-02 is after the end date"),
    ],
)
def test_bad_dates_get_the_form_back_naming_the_problem(mona, query, problem):
    make_item()
    response = client_for(mona).get(reverse("autonomy:export_audit", args=[TYPE]), query)
    assert response.status_code == 400
    assert problem in response.content.decode()


def test_extreme_dates_are_no_server_error(rita, mona):
    decide(item_id=make_item().id, user=rita, outcome="approved")
    rows = audit_rows(client_for(mona), date_from="0001-01-01", date_to="9999-12-31")
    assert len(rows) == 1


def test_a_nul_in_the_query_is_refused(mona):
    make_item()
    response = client_for(mona).get(reverse("autonomy:export_audit", args=[TYPE]), {"date_from": "2026\x00"})
    assert response.status_code == 400


def test_only_managers_within_their_scope_export(rita):
    make_item()
    make_item(OTHER)
    scoped_manager = user_in_role("scoped_manager", None)
    role_grant(user=scoped_manager, role="manager", output_types=[TYPE])
    for name in ("export_audit", "export_dataset"):
        assert client_for(rita).get(reverse(f"autonomy:{name}", args=[TYPE])).status_code == 403
        assert client_for(scoped_manager).get(reverse(f"autonomy:{name}", args=[OTHER])).status_code == 403
        assert client_for(scoped_manager).get(reverse(f"autonomy:{name}", args=[TYPE])).status_code == 200
        manager = user_in_role(f"manager-{name}", "manager")
        assert client_for(manager).get(reverse(f"autonomy:{name}", args=["no-such-type"])).status_code == 404


def test_the_download_is_named_and_typed(mona):
    make_item("invoices/eu €")
    make_item()
    response = client_for(mona).get(
        reverse("autonomy:export_dataset", args=["invoices/eu €"]), {"date_from": "2026-01-01"}
    )
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="invoiceseu-dataset-2026-01-01-to-now.jsonl"'
    response = client_for(mona).get(reverse("autonomy:export_audit", args=[TYPE]))
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="memo-audit-start-to-now.csv"'


def test_the_export_reads_in_one_query_however_many_rows(rita, mona):
    """No query per row: two decisions and six cost the same."""
    client = client_for(mona)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            for name in ("export_audit", "export_dataset"):
                body(client.get(reverse(f"autonomy:{name}", args=[TYPE])))
        return len(captured)

    for _ in range(2):
        decide(item_id=make_item(reason="high_value").id, user=rita, outcome="approved")
    few = queries()
    for _ in range(4):
        item = make_item(reason="high_value")
        decide(item_id=item.id, user=rita, outcome="approved", edited_output={**OUTPUT, "amount": 1})
        decide(item_id=item.id, user=mona, outcome="approved")
    assert Decision.objects.count() == 4  # the four-eyes items are decided; the first two wait for a second
    assert queries() == few


# ---------------------------------------------------------------- the type's page and the API


def test_the_type_page_offers_the_export_form_to_managers_only(rita, mona):
    make_item()
    page = client_for(mona).get(reverse("autonomy:type", args=[TYPE])).content.decode()
    assert reverse("autonomy:export_audit", args=[TYPE]) in page
    assert f'formaction="{reverse("autonomy:export_dataset", args=[TYPE])}"' in page
    assert 'name="date_from"' in page and 'name="date_to"' in page
    page = client_for(rita).get(reverse("autonomy:type", args=[TYPE])).content.decode()
    assert reverse("autonomy:export_audit", args=[TYPE]) not in page


def test_the_api_streams_both_exports_and_names_bad_dates(rita, mona):
    decide(item_id=make_item().id, user=rita, outcome="approved")
    headers = {"Authorization": f"Bearer {api_token_create(user=mona)}"}
    client = Client()
    response = client.get(f"/api/v1/autonomy/{TYPE}/export/audit", headers=headers)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert len(list(csv.DictReader(io.StringIO(body(response))))) == 1
    response = client.get(f"/api/v1/autonomy/{TYPE}/export/dataset", {"date_from": "2000-01-01"}, headers=headers)
    [line] = body(response).splitlines()
    assert DatasetLine.model_validate_json(line).verdict == "correct"
    response = client.get(
        f"/api/v1/autonomy/{TYPE}/export/audit", {"date_from": "2026-02-02", "date_to": "2026-02-01"}, headers=headers
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "date_from"]
    response = client.get(f"/api/v1/autonomy/{TYPE}/export/dataset", {"date_to": "2026-02-30"}, headers=headers)
    assert response.status_code == 422 and response.json()["detail"][0]["loc"] == ["query", "date_to"]
    rita_headers = {"Authorization": f"Bearer {api_token_create(user=rita)}"}
    assert client.get(f"/api/v1/autonomy/{TYPE}/export/audit", headers=rita_headers).status_code == 403
