"""Undo: a reviewer takes back their own decision while its resume is held back (`UNDO_SECONDS`).

Tasks run inline here (TASKS_SYNC=1): a decision's resume task runs on commit and finds itself held back;
`review_items_release_held_resumes`, which every worker's heartbeat calls, queues it again once the window
has ended. A test ends a window by moving the item's `resume_not_before` into the past, as the clock would.
"""

from __future__ import annotations

import re
import threading
import uuid
from datetime import timedelta
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.db import connection
from django.db.models import F
from django.test import Client
from django.utils import timezone

from reviewconsole.autonomy.models import FieldError, GateDecision, StaleRollupDay, Verdict
from reviewconsole.autonomy.services import policy_update
from reviewconsole.engine.models import FlowRun, RunStatus, Step, StepKind
from reviewconsole.engine.services import run_create
from reviewconsole.engine.tasks import resume_flow
from reviewconsole.reviews import services, undo_offers
from reviewconsole.reviews.models import (
    Decision,
    FirstApproval,
    PendingCount,
    ReviewEvent,
    ReviewEventKind,
    ReviewItem,
    ReviewStatus,
    SecondReview,
)
from reviewconsole.reviews.services import (
    DecisionError,
    UndoNotYoursError,
    UndoTooLateError,
    decide,
    review_item_claim_resume,
    review_item_undo,
    review_items_release_held_resumes,
)
from tests.people import client_for, user_in_role
from tests.settings_env import settings_under

pytestmark = pytest.mark.django_db(transaction=True)

WINDOW = 10
# Each round pauses a fresh invoice (about a second); either side wins some rounds on SQLite and PostgreSQL.
RACE_ROUNDS = 10

SMALL = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Currency: EUR
Widgets | 10 | 12.50 | 125.00
Total: 125.00
"""

HIGH_VALUE = """Vendor: Stark Logistics
Invoice Number: SL-77
Invoice Date: 2026-09-15
Freight, pallet | 600 | 95.00 | 57,000.00
Total: 57,000.00 USD
"""


@pytest.fixture(autouse=True)
def undo_window(settings):
    settings.UNDO_SECONDS = WINDOW


@pytest.fixture
def rita() -> User:
    return user_in_role("rita", "reviewer", "invoice")


@pytest.fixture
def sam() -> User:
    return user_in_role("sam", "reviewer", "invoice")


def paused_invoice(raw: str = SMALL) -> ReviewItem:
    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": raw})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    return ReviewItem.objects.get(run=run)


def run_of(item: ReviewItem) -> FlowRun:
    return FlowRun.objects.get(id=item.run_id)


def resumed_steps(item: ReviewItem) -> int:
    """How many times the steps after the review ran: one per resume that got through."""
    return Step.objects.filter(run_id=item.run_id, kind=StepKind.METHOD, method__in=["approve", "reject"]).count()


def kinds(item: ReviewItem) -> list[str]:
    return list(ReviewEvent.objects.filter(item=item).order_by("at", "id").values_list("kind", flat=True))


def pending_invoices() -> int:
    return PendingCount.objects.get(output_type="invoice").pending


def end_window(item: ReviewItem) -> None:
    """As if the decision, and the resume task it queued, had been taken a window and a second ago."""
    earlier = timedelta(seconds=WINDOW + 1)
    ReviewItem.objects.filter(id=item.id).update(resume_not_before=F("resume_not_before") - earlier)
    FlowRun.objects.filter(id=item.run_id).update(enqueued_at=F("enqueued_at") - earlier)


def snapshot(item: ReviewItem) -> tuple:
    """Everything an undo may change, to show a refused one changed nothing."""
    row = ReviewItem.objects.values_list("status", "claimed_by", "resumed_at", "resume_not_before").get(id=item.id)
    gate = GateDecision.objects.values_list("verdict", "verdict_at").get(review_item=item)
    return (
        row,
        gate,
        list(Decision.objects.filter(item=item).values_list("id", "outcome")),
        list(FirstApproval.objects.filter(item=item).values_list("id", flat=True)),
        kinds(item),
        pending_invoices(),
        run_of(item).status,
    )


# --------------------------------------------------------------------------- holding the resume back


def test_a_decision_holds_its_resume_back_for_the_window_then_a_worker_resumes_it_once(rita):
    item = paused_invoice()
    before = timezone.now()
    decide(item_id=item.id, user=rita, outcome="approved")

    item.refresh_from_db()
    assert before + timedelta(seconds=WINDOW) <= item.resume_not_before <= timezone.now() + timedelta(seconds=WINDOW)
    # The resume task ran on commit and left the run waiting; a claim inside the window is refused.
    assert run_of(item).status == RunStatus.WAITING_REVIEW
    assert review_item_claim_resume(item_id=item.id, worker="early") is None
    assert review_items_release_held_resumes() == 0  # the window is still open

    end_window(item)
    assert review_items_release_held_resumes() == 1
    run = run_of(item)
    assert run.status == RunStatus.COMPLETED, run.error
    assert resumed_steps(item) == 1
    assert review_items_release_held_resumes() == 0


def test_without_a_window_the_decision_resumes_at_once(rita, settings):
    settings.UNDO_SECONDS = 0
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")
    item.refresh_from_db()
    assert item.resume_not_before is None
    assert run_of(item).status == RunStatus.COMPLETED
    with pytest.raises(UndoTooLateError, match="Too late to undo: the flow has resumed"):
        review_item_undo(item_id=item.id, user=rita)


# --------------------------------------------------------------------------- undo in the window


def test_an_undone_approval_leaves_no_verdict_no_resume_and_the_item_pending_for_its_reviewer(rita):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")
    assert GateDecision.objects.get(review_item=item).verdict == Verdict.CORRECT
    assert pending_invoices() == 0

    undone = review_item_undo(item_id=item.id, user=rita)

    assert (undone.status, undone.claimed_by, undone.decided_at, undone.resume_not_before) == (
        ReviewStatus.PENDING,
        rita,
        None,
        None,
    )
    assert undone.claim_expires_at > timezone.now()
    assert not Decision.objects.filter(item=item).exists()
    gate = GateDecision.objects.get(review_item=item)
    assert (gate.verdict, gate.verdict_at, gate.marked, gate.error_fields) == ("", None, "", [])
    assert kinds(item)[-2:] == [ReviewEventKind.DECIDED, ReviewEventKind.UNDONE]
    assert ReviewEvent.objects.get(item=item, kind=ReviewEventKind.UNDONE).detail == {"outcome": "approved"}
    assert pending_invoices() == 1
    # Nothing resumes: not the task queued with the decision, nor the release after the window.
    resume_flow(str(item.id))
    assert review_items_release_held_resumes() == 0
    assert run_of(item).status == RunStatus.WAITING_REVIEW
    assert resumed_steps(item) == 0

    # They decide again: that decision is the one, resumed once after its own window.
    decide(item_id=item.id, user=rita, outcome="rejected", reason_code="wrong_data")
    end_window(item)
    assert review_items_release_held_resumes() == 1
    run = run_of(item)
    assert (run.status, run.result["stage"]) == (RunStatus.COMPLETED, "rejected")
    assert resumed_steps(item) == 1
    assert GateDecision.objects.get(review_item=item).verdict == Verdict.INCORRECT


def test_an_undone_edit_leaves_no_field_errors(rita):
    item = paused_invoice()
    edited = {**item.output, "vendor": "Acme Supplies Limited"}
    decide(item_id=item.id, user=rita, outcome="approved", edited_output=edited)
    gate = GateDecision.objects.get(review_item=item)
    assert FieldError.objects.filter(gate_decision=gate).exists()

    review_item_undo(item_id=item.id, user=rita)

    assert not FieldError.objects.filter(gate_decision=gate).exists()
    assert GateDecision.objects.get(review_item=item).verdict == ""
    item.refresh_from_db()
    assert item.output["vendor"] == "Acme Supplies Ltd"  # the AI's output, as before the edit


def test_an_undone_rejection_can_be_decided_again(rita):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="rejected", reason_code="wrong_data")
    assert GateDecision.objects.get(review_item=item).reject_reason == "wrong_data"

    review_item_undo(item_id=item.id, user=rita)

    assert GateDecision.objects.get(review_item=item).reject_reason == ""
    assert ReviewItem.objects.get(id=item.id).status == ReviewStatus.PENDING
    decide(item_id=item.id, user=rita, outcome="approved")
    assert Decision.objects.get(item=item).outcome == "approved"


def test_an_undo_marks_the_verdicts_day_stale_and_drops_the_second_review_it_drew(rita):
    policy_update(output_type="invoice", changes={"second_review_rate": 1.0}, by=None, reason="all of them")
    item = paused_invoice()
    earlier = timezone.now() - timedelta(days=3)
    GateDecision.objects.filter(review_item=item).update(created_at=earlier)
    decide(item_id=item.id, user=rita, outcome="approved")
    assert SecondReview.objects.filter(item=item).exists()
    StaleRollupDay.objects.all().delete()  # as a rollup refresh after the verdict would

    review_item_undo(item_id=item.id, user=rita)

    assert StaleRollupDay.objects.filter(output_type="invoice", day=timezone.localdate(earlier)).exists()
    assert not SecondReview.objects.filter(item=item).exists()


# --------------------------------------------------------------------------- refusals change nothing


def test_an_undo_after_the_window_is_too_late_and_changes_nothing(rita):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")
    end_window(item)
    before = snapshot(item)

    with pytest.raises(UndoTooLateError, match="Too late to undo: the flow has resumed"):
        review_item_undo(item_id=item.id, user=rita)

    assert snapshot(item) == before


def test_an_undo_after_a_worker_claimed_the_resume_is_too_late(rita):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")
    end_window(item)
    review_items_release_held_resumes()
    assert run_of(item).status == RunStatus.COMPLETED
    # Even with the window reopened, a resumed decision stays.
    ReviewItem.objects.filter(id=item.id).update(resume_not_before=timezone.now() + timedelta(seconds=WINDOW))
    before = snapshot(item)

    with pytest.raises(UndoTooLateError):
        review_item_undo(item_id=item.id, user=rita)

    assert snapshot(item) == before
    assert resumed_steps(item) == 1


def test_only_the_person_who_decided_can_undo(rita, sam):
    item = paused_invoice()
    decide(item_id=item.id, user=rita, outcome="approved")
    before = snapshot(item)

    with pytest.raises(UndoNotYoursError, match="only the person who decided can undo") as refused:
        review_item_undo(item_id=item.id, user=sam)

    assert refused.value.status == 403
    assert snapshot(item) == before


def test_an_item_nobody_decided_has_nothing_to_undo(rita):
    item = paused_invoice()
    with pytest.raises(DecisionError, match="Nothing to undo"):
        review_item_undo(item_id=item.id, user=rita)
    item.refresh_from_db()
    assert item.status == ReviewStatus.PENDING


def test_an_expiry_cannot_be_undone(rita):
    item = paused_invoice()
    ReviewItem.objects.filter(id=item.id).update(expires_at=timezone.now() - timedelta(minutes=1))
    services.review_items_expire_overdue()
    assert run_of(item).status == RunStatus.COMPLETED  # an expiry is nobody's decision: nothing is held
    with pytest.raises(DecisionError, match="Nothing to undo"):
        review_item_undo(item_id=item.id, user=rita)


# --------------------------------------------------------------------------- four eyes


def test_a_first_approval_can_be_undone_by_its_approver_within_the_window(rita, sam):
    item = paused_invoice(HIGH_VALUE)
    assert isinstance(decide(item_id=item.id, user=rita, outcome="approved"), FirstApproval)
    with pytest.raises(UndoNotYoursError):
        review_item_undo(item_id=item.id, user=sam)

    undone = review_item_undo(item_id=item.id, user=rita)

    assert not FirstApproval.objects.filter(item=item).exists()
    assert (undone.status, undone.claimed_by) == (ReviewStatus.PENDING, rita)
    assert kinds(item)[-1] == ReviewEventKind.UNDONE
    assert pending_invoices() == 1
    # Her approval is a first approval again, not a second one.
    assert isinstance(decide(item_id=item.id, user=rita, outcome="approved"), FirstApproval)


def test_a_first_approval_past_the_window_stays(rita):
    item = paused_invoice(HIGH_VALUE)
    decide(item_id=item.id, user=rita, outcome="approved")
    FirstApproval.objects.filter(item=item).update(at=timezone.now() - timedelta(seconds=WINDOW + 1))
    before = snapshot(item)

    with pytest.raises(UndoTooLateError, match="Too late to undo"):
        review_item_undo(item_id=item.id, user=rita)

    assert snapshot(item) == before


def test_an_undone_second_approval_leaves_the_first_awaiting_a_second_approver(rita, sam):
    item = paused_invoice(HIGH_VALUE)
    decide(item_id=item.id, user=rita, outcome="approved")
    decide(item_id=item.id, user=sam, outcome="approved")
    with pytest.raises(UndoNotYoursError):
        review_item_undo(item_id=item.id, user=rita)  # the decision is the second approver's

    undone = review_item_undo(item_id=item.id, user=sam)

    assert (undone.status, undone.claimed_by) == (ReviewStatus.PENDING, sam)
    assert FirstApproval.objects.get(item=item).user == rita
    assert not Decision.objects.filter(item=item).exists()
    assert decide(item_id=item.id, user=sam, outcome="approved").user == sam


# --------------------------------------------------------------------------- the race


class SplitClock:
    """`timezone` for the services as two processes on either side of the window's end would read it: the
    undo still inside its window, the worker's claim already past it. The database alone decides."""

    def __init__(self, undo_thread: str, window_end) -> None:
        self.undo_thread, self.window_end = undo_thread, window_end

    def now(self):
        before, after = self.window_end - timedelta(milliseconds=1), self.window_end + timedelta(milliseconds=1)
        return before if threading.current_thread().name == self.undo_thread else after


def race_once(item: ReviewItem, user: User, monkeypatch) -> tuple[object, object]:
    window_end = ReviewItem.objects.values_list("resume_not_before", flat=True).get(id=item.id)
    monkeypatch.setattr(services, "timezone", SimpleNamespace(now=SplitClock("undo", window_end).now))
    barrier = threading.Barrier(2)
    results: dict[str, object] = {}

    def attempt(name, action):
        try:
            barrier.wait(timeout=10)
            results[name] = action()
        except Exception as error:
            results[name] = error
        finally:
            connection.close()

    threads = [
        threading.Thread(
            name="undo", target=attempt, args=("undo", lambda: review_item_undo(item_id=item.id, user=user))
        ),
        threading.Thread(name="resume", target=attempt, args=("resume", lambda: resume_flow(str(item.id)))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(thread.is_alive() for thread in threads)
    monkeypatch.undo()
    return results["undo"], results["resume"]


def test_undo_racing_the_resume_claim_exactly_one_wins(rita, monkeypatch):
    wins = {"undo": 0, "resume": 0}
    for _ in range(RACE_ROUNDS):
        item = paused_invoice()
        decide(item_id=item.id, user=rita, outcome="approved")

        undo, resume = race_once(item, rita, monkeypatch)

        assert resume is None or not isinstance(resume, Exception), repr(resume)
        run, item = run_of(item), ReviewItem.objects.get(id=item.id)
        if isinstance(undo, ReviewItem):
            wins["undo"] += 1
            assert (item.status, item.resumed_at) == (ReviewStatus.PENDING, None)
            assert not Decision.objects.filter(item=item).exists()
            assert GateDecision.objects.get(review_item=item).verdict == ""
            assert run.status == RunStatus.WAITING_REVIEW
            assert resumed_steps(item) == 0
        else:
            wins["resume"] += 1
            assert isinstance(undo, UndoTooLateError), repr(undo)
            assert item.status == ReviewStatus.DECIDED and item.resumed_at is not None
            assert Decision.objects.filter(item=item).count() == 1
            assert run.status == RunStatus.COMPLETED, run.error
            assert resumed_steps(item) == 1
        # Whoever won, nothing more happens: no second resume, no undo.
        assert review_items_release_held_resumes() == 0
        assert resumed_steps(item) == (0 if item.status == ReviewStatus.PENDING else 1)
    assert sum(wins.values()) == RACE_ROUNDS, wins


# --------------------------------------------------------------------------- the API


def api_client(user: User) -> Client:
    from reviewconsole.engine.tokens import api_token_create

    return Client(headers={"Authorization": f"Bearer {api_token_create(user=user)}"})


def test_api_undo_answers_the_item_pending_then_409_403_and_404(rita, sam):
    item = paused_invoice()
    client = api_client(rita)
    decided = client.post(
        f"/api/v1/reviews/{item.id}/decision", {"outcome": "approved"}, content_type="application/json"
    )
    assert decided.status_code == 200, decided.content

    not_yours = api_client(sam).post(f"/api/v1/reviews/{item.id}/undo")
    assert (not_yours.status_code, not_yours.json()["detail"]) == (
        403,
        "Too late to undo: only the person who decided can undo",
    )
    undone = client.post(f"/api/v1/reviews/{item.id}/undo")
    assert undone.status_code == 200, undone.content
    body = undone.json()
    assert (body["id"], body["status"], body["decision"], body["claimed_by"]) == (str(item.id), "pending", None, "rita")

    again = client.post(f"/api/v1/reviews/{item.id}/undo")
    assert (again.status_code, again.json()["detail"]) == (409, "Nothing to undo: this item has no decision")
    client.post(f"/api/v1/reviews/{item.id}/decision", {"outcome": "approved"}, content_type="application/json")
    end_window(item)
    late = client.post(f"/api/v1/reviews/{item.id}/undo")
    assert (late.status_code, late.json()["detail"]) == (409, "Too late to undo: the flow has resumed")
    assert client.post(f"/api/v1/reviews/{uuid.uuid4()}/undo").status_code == 404


def test_the_undo_endpoint_is_in_the_openapi_schema(rita):
    schema = api_client(rita).get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/reviews/{item_id}/undo"]["post"]
    assert {"200", "403", "404", "409"} <= set(operation["responses"])


# --------------------------------------------------------------------------- the pages


def test_the_page_after_a_decision_offers_undo_and_the_undo_puts_the_item_back(rita):
    first, second = paused_invoice(), paused_invoice()
    client = client_for(rita)
    client.get(f"/reviews/{first.id}/")
    response = client.post(f"/reviews/{first.id}/decide/", {"outcome": "approved"}, follow=True)
    assert response.redirect_chain[-1][0] == f"/reviews/{second.id}/"
    page = response.content.decode()
    assert f'action="/reviews/{first.id}/undo/"' in page
    assert "Approved: invoice" in page and 'data-key="z"' in page

    undone = client.post(f"/reviews/{first.id}/undo/", follow=True)
    assert undone.redirect_chain[-1][0] == f"/reviews/{first.id}/"
    assert "is pending again, yours to decide" in undone.content.decode()
    assert 'data-key="z"' not in undone.content.decode()  # the offer is used up
    first.refresh_from_db()
    assert (first.status, first.claimed_by) == (ReviewStatus.PENDING, rita)
    assert str(first.id) in client.get("/reviews/").content.decode()


def test_a_late_undo_on_the_page_says_so(rita, sam):
    item = paused_invoice()
    client_for(rita).post(f"/reviews/{item.id}/decide/", {"outcome": "approved"})
    refused = client_for(sam).post(f"/reviews/{item.id}/undo/")
    assert refused.status_code == 403
    assert "only the person who decided can undo" in refused.content.decode()
    end_window(item)
    late = client_for(rita).post(f"/reviews/{item.id}/undo/")
    assert late.status_code == 409
    assert "Too late to undo: the flow has resumed" in late.content.decode()
    assert ReviewItem.objects.get(id=item.id).status == ReviewStatus.DECIDED


def test_the_offer_ends_with_its_window(rita, settings):
    item = paused_invoice()
    client = client_for(rita)
    client.post(f"/reviews/{item.id}/decide/", {"outcome": "approved"})
    session = client.session
    session[undo_offers.SESSION_KEY]["until"] = (timezone.now() - timedelta(seconds=1)).isoformat()
    session.save()
    assert 'data-key="z"' not in client.get("/reviews/").content.decode()


def test_without_undo_the_decision_is_a_message(rita, settings):
    settings.UNDO_SECONDS = 0
    item = paused_invoice()
    page = client_for(rita).post(f"/reviews/{item.id}/decide/", {"outcome": "approved"}, follow=True).content.decode()
    assert "Approved: invoice" in page
    assert "/undo/" not in page


# --------------------------------------------------------------------------- the setting


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"TASKS_SYNC": "0"}, 10),
        ({"TASKS_SYNC": "1"}, 0),
        ({"TASKS_SYNC": "0", "UNDO_SECONDS": "0"}, 0),
        ({"TASKS_SYNC": "0", "UNDO_SECONDS": "60"}, 60),
    ],
)
def test_undo_seconds_defaults_and_bounds(monkeypatch, environ, expected):
    assert settings_under(monkeypatch, DEBUG="1", **environ)["UNDO_SECONDS"] == expected


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"TASKS_SYNC": "0", "UNDO_SECONDS": "61"}, "from 0 (undo off) to 60, not '61'"),
        ({"TASKS_SYNC": "0", "UNDO_SECONDS": "ten"}, "from 0 (undo off) to 60, not 'ten'"),
        ({"TASKS_SYNC": "0", "UNDO_SECONDS": "-1"}, "from 0 (undo off) to 60, not '-1'"),
        ({"TASKS_SYNC": "1", "UNDO_SECONDS": "10"}, "must be 0 with TASKS_SYNC=1"),
    ],
)
def test_undo_seconds_is_validated_at_start_up(monkeypatch, environ, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        settings_under(monkeypatch, DEBUG="1", **environ)
