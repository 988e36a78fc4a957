"""Four eyes (maker-checker) on high-value invoices: two different approvers, either may reject, one resume.

Through the service layer, the API and the pages, on the invoice flow (which sends an invoice over its high-value
total to review with reason `high_value`).
"""

import importlib
import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from reviewconsole.autonomy.models import GateDecision, PolicyChange, Verdict
from reviewconsole.autonomy.services import PolicyError, policy_ensure, policy_update
from reviewconsole.engine.models import FlowRun, RunStatus, Step, StepKind
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.confirmations import approval_confirmations, confirmation_key
from reviewconsole.reviews.models import (
    Decision,
    FirstApproval,
    PendingCount,
    ReviewEvent,
    ReviewEventKind,
    ReviewItem,
    ReviewStatus,
)
from reviewconsole.reviews.services import (
    AlreadyDecidedError,
    NeedsSecondApproverError,
    decide,
    decide_bulk,
)
from tests.people import client_for, user_in_role

pytestmark = pytest.mark.django_db(transaction=True)

HIGH_VALUE = """Vendor: Stark Logistics
Invoice Number: SL-77
Invoice Date: 2026-09-15
Freight, pallet | 600 | 95.00 | 57,000.00
Total: 57,000.00 USD
"""

SMALL = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Currency: EUR
Widgets | 10 | 12.50 | 125.00
Total: 125.00
"""


@pytest.fixture
def rita() -> User:
    return user_in_role("rita", "reviewer", "invoice")


@pytest.fixture
def sam() -> User:
    return user_in_role("sam", "reviewer", "invoice")


@pytest.fixture
def tom() -> User:
    return user_in_role("tom", "reviewer", "invoice")


def paused_invoice(raw: str = HIGH_VALUE) -> ReviewItem:
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": raw})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    return ReviewItem.objects.get(run=run)


def run_of(item: ReviewItem) -> FlowRun:
    return FlowRun.objects.get(id=item.run_id)


def kinds(item: ReviewItem) -> list[str]:
    return list(ReviewEvent.objects.filter(item=item).order_by("at", "id").values_list("kind", flat=True))


def resumed_steps(item: ReviewItem) -> int:
    """How many times the steps after the review ran: one per resume that got through."""
    return Step.objects.filter(run_id=item.run_id, kind=StepKind.METHOD, method__in=["approve", "reject"]).count()


def pending_invoices() -> int:
    return PendingCount.objects.get(output_type="invoice").pending


# --------------------------------------------------------------------------- the service


def test_a_first_approval_leaves_the_item_pending_and_the_run_waiting(rita):
    item = paused_invoice()
    assert item.reason == "high_value"
    assert policy_ensure(output_type="invoice").four_eyes_reasons == ["high_value"]  # on by default

    edited = {**item.output, "vendor": "Stark Logistics GmbH"}
    first = decide(item_id=item.id, user=rita, outcome="approved", edited_output=edited, comment="legal name")

    assert isinstance(first, FirstApproval)
    assert (first.user, first.outcome, first.comment) == (rita, "approved", "legal name")
    assert first.diff == [{"path": "vendor", "before": "Stark Logistics", "after": "Stark Logistics GmbH"}]
    item.refresh_from_db()
    assert (item.status, item.decided_at, item.claimed_by) == (ReviewStatus.PENDING, None, None)
    assert not Decision.objects.filter(item=item).exists()
    assert run_of(item).status == RunStatus.WAITING_REVIEW
    assert resumed_steps(item) == 0
    assert pending_invoices() == 1  # still in the queue, not counted as decided
    assert GateDecision.objects.get(review_item=item).verdict == ""  # no verdict before the final decision
    assert kinds(item)[-1] == ReviewEventKind.FIRST_APPROVED
    event = ReviewEvent.objects.get(item=item, kind=ReviewEventKind.FIRST_APPROVED)
    assert (event.user, event.detail) == (rita, {"outcome": "approved", "changed": ["vendor"]})


def test_the_first_approver_cannot_approve_again_and_nothing_is_written(rita):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")
    for edit in (None, {**item.output, "vendor": "Someone else"}):
        with pytest.raises(NeedsSecondApproverError, match="needs a second approver"):
            decide(item_id=item.id, user=rita, outcome="approved", edited_output=edit)
    assert FirstApproval.objects.get(item=item).edited_output is None
    assert not Decision.objects.filter(item=item).exists()
    assert kinds(item).count(ReviewEventKind.FIRST_APPROVED) == 1
    assert run_of(item).status == RunStatus.WAITING_REVIEW


def test_a_second_approval_as_is_confirms_the_first_approvers_edit_and_resumes_once(rita, sam):
    item = paused_invoice()
    edited = {**item.output, "total_amount": 57500.0}
    decide(item_id=item.id, user=rita, outcome="approved", edited_output=edited)

    decision = decide(item_id=item.id, user=sam, outcome="approved")

    assert isinstance(decision, Decision)
    assert (decision.user, decision.edited_output["total_amount"]) == (sam, 57500.0)
    assert decision.diff == [{"path": "total_amount", "before": 57000.0, "after": 57500.0}]
    run = run_of(item)
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["invoice"]["total_amount"] == 57500.0
    assert resumed_steps(item) == 1
    assert pending_invoices() == 0
    # The verdict is the final decision's: an edited output was not correct.
    gate_decision = GateDecision.objects.get(review_item=item)
    assert (gate_decision.verdict, gate_decision.error_fields) == (Verdict.INCORRECT, ["total_amount"])
    assert kinds(item)[-2:] == [ReviewEventKind.FIRST_APPROVED, ReviewEventKind.DECIDED]


def test_two_approvals_as_is_record_a_correct_verdict(rita, sam):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")
    decision = decide(item_id=item.id, user=sam, outcome="approved")
    assert decision.edited_output is None
    assert GateDecision.objects.get(review_item=item).verdict == Verdict.CORRECT
    assert run_of(item).result["invoice"]["total_amount"] == 57000.0


def test_a_second_approver_who_edits_has_the_last_word_diffed_against_the_ai_output(rita, sam):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved", edited_output={**item.output, "total_amount": 57500.0})
    # Back to the AI's total, with another vendor: the first approver's correction is undone.
    final = {**item.output, "vendor": "Stark Logistics AG"}
    decision = decide(item_id=item.id, user=sam, outcome="approved", edited_output=final)
    assert decision.diff == [{"path": "vendor", "before": "Stark Logistics", "after": "Stark Logistics AG"}]
    result = run_of(item).result["invoice"]
    assert (result["vendor"], result["total_amount"]) == ("Stark Logistics AG", 57000.0)
    assert GateDecision.objects.get(review_item=item).error_fields == ["vendor"]


def test_a_second_approver_sending_back_the_ai_output_approves_it_unchanged(rita, sam):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved", edited_output={**item.output, "total_amount": 1.0})
    decision = decide(item_id=item.id, user=sam, outcome="approved", edited_output=dict(item.output))
    assert (decision.edited_output, decision.diff) == (None, [])
    assert run_of(item).result["invoice"]["total_amount"] == 57000.0
    assert GateDecision.objects.get(review_item=item).verdict == Verdict.CORRECT


@pytest.mark.parametrize("rejecter", ["rita", "sam"])
def test_either_approver_may_reject_which_ends_the_item(rita, sam, rejecter):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")
    user = {"rita": rita, "sam": sam}[rejecter]
    decision = decide(item_id=item.id, user=user, outcome="rejected", reason_code="wrong_data")
    assert (decision.outcome, decision.user) == ("rejected", user)
    run = run_of(item)
    assert (run.status, run.result["stage"]) == (RunStatus.COMPLETED, "rejected")
    assert resumed_steps(item) == 1
    assert GateDecision.objects.get(review_item=item).verdict == Verdict.INCORRECT
    with pytest.raises(AlreadyDecidedError):
        decide(item_id=item.id, user=sam, outcome="approved")


def test_a_rejection_needs_no_second_person(rita):
    item = paused_invoice()
    decision = decide(item_id=item.id, user=rita, outcome="rejected", reason_code="wrong_data")
    assert isinstance(decision, Decision)
    assert run_of(item).status == RunStatus.COMPLETED
    assert not FirstApproval.objects.exists()


def test_without_the_option_one_approval_decides(rita):
    policy_update(output_type="invoice", changes={"four_eyes_reasons": []}, by=None, reason="one pair of eyes")
    item = paused_invoice()
    assert isinstance(decide(item_id=item.id, user=rita, outcome="approved"), Decision)
    assert run_of(item).status == RunStatus.COMPLETED


def test_other_review_reasons_are_not_affected(rita):
    item = paused_invoice(SMALL)
    assert item.reason != "high_value"
    assert isinstance(decide(item_id=item.id, user=rita, outcome="approved"), Decision)


def test_the_option_names_any_reason(rita, sam):
    policy_update(output_type="invoice", changes={"four_eyes_reasons": ["always_review"]}, by=None, reason="all")
    item = paused_invoice(SMALL)
    assert item.reason == "always_review"
    assert isinstance(decide(item_id=item.id, user=rita, outcome="approved"), FirstApproval)
    assert isinstance(decide(item_id=item.id, user=sam, outcome="approved"), Decision)


def test_bulk_approval_skips_four_eyes_items_saying_why(rita, sam):
    high, small = paused_invoice(), paused_invoice(SMALL)
    decide(item_id=high.id, user=rita, outcome="approved")  # awaiting a second approval: bulk is no second either
    other_high = paused_invoice()

    result = decide_bulk(item_ids=[high.id, small.id, other_high.id], user=sam, output_type="invoice")

    assert result.decided == [str(small.id)]
    assert result.skipped == {
        str(high.id): "Needs two approvers (four eyes): open it to approve",
        str(other_high.id): "Needs two approvers (four eyes): open it to approve",
    }
    assert not FirstApproval.objects.filter(item=other_high).exists()
    assert run_of(high).status == RunStatus.WAITING_REVIEW


# --------------------------------------------------------------------------- races


def race(item: ReviewItem, users: list[User]) -> dict[str, object]:
    """Each user approves the item at the same moment; what each got back."""
    barrier = threading.Barrier(len(users))
    results: dict[str, object] = {}

    def attempt(user: User) -> None:
        try:
            barrier.wait(timeout=10)
            results[user.username] = decide(item_id=item.id, user=user, outcome="approved")
        except Exception as error:
            results[user.username] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    return results


def test_concurrent_second_approvals_one_wins_and_the_run_completes_once(rita, sam, tom):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")

    results = race(item, [sam, tom])

    winners = [name for name, value in results.items() if isinstance(value, Decision)]
    losers = [value for value in results.values() if not isinstance(value, Decision)]
    assert len(winners) == 1, results
    [loser] = losers
    assert isinstance(loser, AlreadyDecidedError), repr(loser)
    assert str(loser).startswith(f"Already decided by {winners[0]} at ")
    assert Decision.objects.get(item=item).user.username == winners[0]
    assert kinds(item).count(ReviewEventKind.DECIDED) == 1
    run = run_of(item)
    assert run.status == RunStatus.COMPLETED, run.error
    assert resumed_steps(item) == 1
    assert pending_invoices() == 0


def test_concurrent_first_approvals_make_one_first_and_one_second_approval(rita, sam):
    """Two reviewers approving a fresh item at once are two different people: the first approval, then the
    decision (they serialize on the run's row)."""
    item = paused_invoice()

    results = race(item, [rita, sam])

    assert sorted(type(value).__name__ for value in results.values()) == ["Decision", "FirstApproval"], results
    first = FirstApproval.objects.get(item=item)
    assert Decision.objects.get(item=item).user != first.user
    assert run_of(item).status == RunStatus.COMPLETED
    assert resumed_steps(item) == 1


# --------------------------------------------------------------------------- the API


def api_client(user: User):
    from django.test import Client

    from reviewconsole.engine.tokens import api_token_create

    return Client(headers={"Authorization": f"Bearer {api_token_create(user=user)}"})


def post_decision(client, item: ReviewItem, body: dict):
    return client.post(f"/api/v1/reviews/{item.id}/decision", body, content_type="application/json")


def test_api_first_approval_200_same_user_409_another_reviewer_completes_the_run(rita, sam):
    item = paused_invoice()
    first_client, second_client = api_client(rita), api_client(sam)

    response = post_decision(first_client, item, {"outcome": "approved"})
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["awaiting_second_approval"]) == ("pending", True)
    listed = second_client.get("/api/v1/reviews?status=pending&output_type=invoice").json()["results"]
    assert [(row["id"], row["awaiting_second_approval"]) for row in listed] == [(str(item.id), True)]
    assert listed[0]["first_approval"]["user"] == "rita"
    assert listed[0]["first_approval"]["edited"] is False

    response = post_decision(first_client, item, {"outcome": "approved"})
    assert response.status_code == 409
    assert "needs a second approver" in response.json()["detail"]

    response = post_decision(second_client, item, {"outcome": "approved"})
    assert response.status_code == 200, response.content
    assert (response.json()["status"], response.json()["user"]) == ("decided", "sam")
    assert run_of(item).status == RunStatus.COMPLETED


def test_policy_api_exposes_validates_and_logs_four_eyes_reasons(django_user_model):
    manager = api_client(user_in_role("maria", "manager"))
    policy_ensure(output_type="invoice")
    url = "/api/v1/autonomy/invoice"
    assert manager.get(url).json()["four_eyes_reasons"] == ["high_value"]

    refused = manager.patch(
        url, {"four_eyes_reasons": ["high_value", "made_up"], "reason": "x"}, content_type="application/json"
    )
    assert refused.status_code == 422
    [error] = refused.json()["detail"]
    assert error["loc"] == ["body", "four_eyes_reasons"] and "made_up" in error["msg"]

    response = manager.patch(
        url,
        {"four_eyes_reasons": ["high_value", "low_confidence"], "reason": "unsure readings too"},
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["four_eyes_reasons"] == ["high_value", "low_confidence"]
    change = PolicyChange.objects.get()
    assert change.changes == {"four_eyes_reasons": [["high_value"], ["high_value", "low_confidence"]]}
    assert change.by.username == "maria"


def test_policy_update_refuses_a_value_that_is_not_a_list_of_codes():
    with pytest.raises(PolicyError, match="four_eyes_reasons must be a list") as raised:
        policy_update(output_type="invoice", changes={"four_eyes_reasons": "high_value"}, by=None, reason="x")
    assert raised.value.field == "four_eyes_reasons"


# --------------------------------------------------------------------------- the pages


def test_pages_show_the_awaiting_item_and_refuse_the_first_approvers_second_approval(rita, sam):
    item = paused_invoice()
    rita_client, sam_client = client_for(rita), client_for(sam)
    page = rita_client.get(f"/reviews/{item.id}/").content.decode()
    assert 'data-four-eyes="needed"' in page

    # A high-value approval on the page is deliberate: it posts the tick naming the high value.
    confirm = confirmation_key(approval_confirmations(reason=item.reason, findings=item.findings))
    response = rita_client.post(f"/reviews/{item.id}/decide/", {"outcome": "approved", "confirm": confirm})
    assert response.status_code == 302
    assert not Decision.objects.exists()

    queue = sam_client.get("/reviews/").content.decode()
    assert "Awaiting 2nd approval" in queue
    page = sam_client.get(f"/reviews/{item.id}/").content.decode()
    assert 'data-four-eyes="awaiting"' in page and "First approved by rita" in page
    assert "Approving confirms the output as shown" in page

    # The first approver is not sent back to it, and starting work on it does not keep others off with a claim.
    assert rita_client.get("/reviews/next/?type=invoice")["Location"] == "/reviews/?type=invoice"
    assert sam_client.get("/reviews/next/?type=invoice")["Location"] == f"/reviews/{item.id}/?list=type%3Dinvoice"
    ReviewItem.objects.filter(id=item.id).update(claimed_by=None, claim_expires_at=None)
    rita_client.post(f"/reviews/{item.id}/claim/")
    item.refresh_from_db()
    assert item.claimed_by is None

    refused = rita_client.post(f"/reviews/{item.id}/decide/", {"outcome": "approved", "confirm": confirm})
    assert refused.status_code == 409
    content = refused.content.decode()
    assert "needs a second approver" in content and "You gave the first approval" in content
    assert not Decision.objects.exists()

    response = sam_client.post(f"/reviews/{item.id}/decide/", {"outcome": "approved", "confirm": confirm})
    assert response.status_code == 302
    assert Decision.objects.get(item=item).user == sam
    assert run_of(item).status == RunStatus.COMPLETED
    page = sam_client.get(f"/reviews/{item.id}/").content.decode()
    assert "First approval" in page and 'data-four-eyes="awaiting"' not in page


def test_policy_form_sets_four_eyes_reasons_and_logs_the_change():
    from reviewconsole.autonomy.forms import PolicyForm

    policy = policy_ensure(output_type="invoice")
    manager = client_for(user_in_role("maria", "manager"))
    data = {key: value for key, value in PolicyForm.initial_for(policy).items() if value is not None}
    data.update(
        review_all="on", reject_reasons="wrong_data", four_eyes_reasons=["high_value", "audit_sample"], reason="why"
    )
    data.pop("threshold", None)
    data = {key: ("on" if value is True else value) for key, value in data.items() if value is not False}
    response = manager.post("/autonomy/invoice/", data)
    assert response.status_code == 302, response.content.decode()[:3000]
    policy.refresh_from_db()
    assert policy.four_eyes_reasons == ["high_value", "audit_sample"]
    change = PolicyChange.objects.get()
    assert change.changes["four_eyes_reasons"] == [["high_value"], ["high_value", "audit_sample"]]
    page = manager.get("/autonomy/invoice/").content.decode()
    assert "Four eyes for" in page


# --------------------------------------------------------------------------- the migration


def test_the_migration_turns_four_eyes_on_for_high_value_in_existing_policies():
    before, after = [("autonomy", "0006_verdict_time_indexes")], [("autonomy", "0007_four_eyes_reasons")]
    importlib.import_module("reviewconsole.autonomy.migrations.0007_four_eyes_reasons")
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        apps.get_model("autonomy", "AutonomyPolicy").objects.create(output_type="invoice")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
        apps = executor.loader.project_state(after).apps
        policy = apps.get_model("autonomy", "AutonomyPolicy").objects.get(output_type="invoice")
        assert policy.four_eyes_reasons == ["high_value"]
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
