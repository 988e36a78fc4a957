"""Reviewer reliability: handling time and marks, evidence hygiene, blind second reviews and adjudication,
and the reviewers page. The acceptance tests run the real invoice flow on the demo model."""

from __future__ import annotations

import math
import random
import re
from datetime import timedelta

import pytest
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from reviewconsole.autonomy import selectors
from reviewconsole.autonomy.evidence import quantile
from reviewconsole.autonomy.guard import guard_window
from reviewconsole.autonomy.models import AutonomyPolicy, GateDecision, StaleRollupDay, Verdict
from reviewconsole.autonomy.recommendation import type_strata
from reviewconsole.autonomy.services import policy_update, rollup_refresh
from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews import reliability, reliability_selectors
from reviewconsole.reviews.models import (
    Decision,
    DecisionMark,
    ReviewEvent,
    ReviewEventKind,
    ReviewItem,
    SecondReview,
    SecondReviewStatus,
)
from reviewconsole.reviews.services import decide, decide_bulk, review_item_claim
from tests.people import client_for, user_in_role
from tests.test_autonomy_rollup import TYPES, assert_same, direct, make_decisions, snapshot

pytestmark = pytest.mark.django_db(transaction=True)

TYPE = "invoice"
# Each number is another invoice (its own number and date): no possible-duplicate finding holds it out of bulk.
CLEAN = """Vendor: Acme Supplies Ltd
Invoice Number: INV-{number}
Invoice Date: 2026-10-{day:02d}
Due Date: 2026-10-31
Currency: EUR
Description | Qty | Unit price | Amount
Widgets | 10 | 12.50 | 125.00
Gadgets | 2 | 40.00 | 80.00
Total: 205.00
"""


def invoice_item(number: int) -> ReviewItem:
    """An invoice the new type sends to review (everything is reviewed at first), paused on the demo model."""
    run = run_create(
        flow_name="invoice_processing", inputs={"raw_invoice": CLEAN.format(number=number, day=number + 1)}
    )
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    return ReviewItem.objects.get(run=run)


def opened(item: ReviewItem, user, seconds_ago: float) -> None:
    """The reviewer opened (claimed) the item `seconds_ago`."""
    assert review_item_claim(item_id=item.id, user=user)
    ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.CLAIMED, user=user).update(
        at=timezone.now() - timedelta(seconds=seconds_ago)
    )


def set_policy(**changes) -> None:
    policy_update(output_type=TYPE, changes=changes, by=None, reason="test policy")


@pytest.fixture
def rita():
    return user_in_role("rita", "reviewer", TYPE)


@pytest.fixture
def otto():
    return user_in_role("otto", "reviewer", TYPE)


@pytest.fixture
def mona():
    return user_in_role("mona", "manager")


# ---------------------------------------------------------------- handling time and marks


def test_handling_time_runs_from_opening_to_deciding_and_quick_approvals_are_marked_fast(rita, settings):
    settings.FAST_APPROVAL_SECONDS = 5
    slow, quick, unopened = invoice_item(1), invoice_item(2), invoice_item(3)
    opened(slow, rita, 40)
    opened(quick, rita, 2)
    for item in (slow, quick, unopened):
        decide(item_id=item.id, user=rita, outcome="approved")
    decisions = {d.item_id: d for d in Decision.objects.all()}
    assert decisions[slow.id].handling_seconds == pytest.approx(40, abs=2)
    assert decisions[slow.id].mark == ""
    assert decisions[quick.id].handling_seconds < 5 and decisions[quick.id].mark == DecisionMark.FAST
    # Decided without opening it (as through the API): no handling time, and nothing to call fast.
    assert decisions[unopened.id].handling_seconds is None and decisions[unopened.id].mark == ""
    marks = dict(GateDecision.objects.values_list("review_item_id", "marked"))
    assert marks == {slow.id: "", quick.id: "fast", unopened.id: ""}


def test_quick_edits_and_rejections_are_not_marked(rita):
    edited, rejected = invoice_item(1), invoice_item(2)
    for item in (edited, rejected):
        opened(item, rita, 1)
    decide(item_id=edited.id, user=rita, outcome="approved", edited_output={**edited.output, "vendor": "Acme Ltd"})
    decide(item_id=rejected.id, user=rita, outcome="rejected", reason_code="wrong_data")
    assert set(Decision.objects.values_list("mark", flat=True)) == {""}


def test_bulk_approvals_are_marked_bulk(rita):
    items = [invoice_item(n) for n in range(3)]
    opened(items[0], rita, 60)  # opened long ago, still part of a bulk approval
    result = decide_bulk(item_ids=[i.id for i in items], user=rita, output_type=TYPE)
    assert len(result.decided) == 3
    assert list(Decision.objects.values_list("mark", flat=True)) == ["bulk"] * 3
    assert list(GateDecision.objects.values_list("marked", flat=True)) == ["bulk"] * 3


# ---------------------------------------------------------------- evidence hygiene


def test_with_the_policy_set_bulk_approvals_are_no_evidence_and_the_dashboard_counts_them(rita, mona):
    set_policy(exclude_marked_approvals=True)
    bulk = [invoice_item(n) for n in range(3)]
    decide_bulk(item_ids=[i.id for i in bulk], user=rita, output_type=TYPE)
    checked = invoice_item(9)
    opened(checked, rita, 30)
    decide(item_id=checked.id, user=rita, outcome="approved", edited_output={**checked.output, "vendor": "Acme"})

    summary = selectors.type_summary(TYPE)
    # Only the checked (edited) verdict counts: 0 right of 1.
    assert (summary["reviewed"], summary["correct"], summary["accuracy"]) == (1, 0, 0.0)
    assert (summary["marked_bulk"], summary["excluded_bulk"]) == (3, 3)
    assert summary["pending_verdict"] == 0  # left out is not waiting
    assert sum(s.reviewed for s in type_strata(TYPE).values()) == 1
    page = client_for(mona).get(reverse("autonomy:type", args=[TYPE])).content.decode()
    assert 'data-left-out="bulk">3<' in page

    # Turned off, the same verdicts count again, at once.
    set_policy(exclude_marked_approvals=False)
    summary = selectors.type_summary(TYPE)
    assert (summary["reviewed"], summary["correct"], summary["excluded_bulk"]) == (4, 3, 0)
    assert sum(s.reviewed for s in type_strata(TYPE).values()) == 4


def test_flagged_and_approved_counts_right_and_edited_counts_wrong_whatever_the_hygiene_policy(rita):
    set_policy(exclude_marked_approvals=True)
    flagged, edited = invoice_item(1), invoice_item(2)
    finding = {"check": "line_sum", "severity": "error", "field": "total_amount", "message": "lines add up to 200"}
    ReviewItem.objects.filter(id=flagged.id).update(findings=[finding])
    for item in (flagged, edited):
        opened(item, rita, 30)  # checked: not marked
    decide(item_id=flagged.id, user=rita, outcome="approved")
    decide(item_id=edited.id, user=rita, outcome="approved", edited_output={**edited.output, "total_amount": 200.0})
    verdicts = dict(GateDecision.objects.values_list("review_item_id", "verdict"))
    assert verdicts == {flagged.id: Verdict.CORRECT, edited.id: Verdict.INCORRECT}
    summary = selectors.type_summary(TYPE)
    assert (summary["reviewed"], summary["correct"]) == (2, 1)


def test_the_guard_and_the_recommendation_leave_marked_approvals_out():
    set_policy(threshold=0.5, audit_rate=1.0)
    policy = AutonomyPolicy.objects.get(output_type=TYPE)
    rows = GateDecision.objects.bulk_create(
        GateDecision(
            output_type=TYPE,
            confidence=0.9,
            threshold=0.5,
            route="human_review",
            reason="audit_sample",
            audit=True,
            verdict=Verdict.CORRECT,
            verdict_at=timezone.now(),
            marked="bulk" if n % 2 else "",
        )
        for n in range(10)
    )
    since = timezone.now() - timedelta(hours=1)
    assert guard_window(policy, since).count() == 10
    set_policy(exclude_marked_approvals=True)
    policy.refresh_from_db()
    # (Read over the same window: any policy change starts the guard's own window afresh.)
    assert sorted(guard_window(policy, since).values_list("id", flat=True)) == [r.id for r in rows if not r.marked]
    assert type_strata(TYPE)[90].reviewed == 5


def test_rollups_stay_equal_to_direct_queries_when_the_policy_leaves_marked_approvals_out():
    decisions = make_decisions()
    rng = random.Random(3)
    marked = [d for d in decisions if d.verdict == Verdict.CORRECT and rng.random() < 0.4]
    for decision in marked:
        decision.marked = rng.choice(["bulk", "fast"])
    GateDecision.objects.bulk_update(marked, ["marked"])
    before = snapshot()
    rollup_refresh()
    assert_same(snapshot(), before)
    for output_type in TYPES:
        policy_update(output_type=output_type, changes={"exclude_marked_approvals": True}, by=None, reason="hygiene")
    # The change marked the rolled-up days it touched stale, and the figures moved.
    assert StaleRollupDay.objects.exists()
    after = snapshot()
    assert after["summary"]["reviewed"] < before["summary"]["reviewed"]
    assert after["summary"]["excluded_bulk"] + after["summary"]["excluded_fast"] == sum(
        1 for d in marked if d.output_type == TYPES[0] and d.verdict
    )
    assert_same(after, direct())
    rollup_refresh()
    assert_same(snapshot(), after)


# ---------------------------------------------------------------- double review (acceptance)


def test_second_review_is_blind_in_another_reviewers_queue_and_adjudication_changes_the_accuracy(rita, otto, mona):
    set_policy(second_review_rate=1.0)
    kept, overturned = invoice_item(1), invoice_item(2)
    for item in (kept, overturned):
        opened(item, rita, 20)
        decide(item_id=item.id, user=rita, outcome="approved")
    # The flows resumed with rita's decisions; the second reviews change no run.
    results = {run.id: run.result for run in FlowRun.objects.all()}
    assert {run.status for run in FlowRun.objects.all()} == {RunStatus.COMPLETED}
    assert SecondReview.objects.filter(status=SecondReviewStatus.PENDING).count() == 2
    before = selectors.type_summary(TYPE)
    assert (before["reviewed"], before["correct"], before["accuracy"]) == (2, 2, 1.0)

    otto_client, rita_client = client_for(otto), client_for(rita)
    queue = otto_client.get(reverse("reviews:queue")).content.decode()
    assert "Second review" in queue and reverse("reviews:second_review", args=[overturned.id]) in queue
    assert "Second review" not in rita_client.get(reverse("reviews:queue")).content.decode()
    assert rita_client.get(reverse("reviews:second_review", args=[overturned.id])).status_code == 404

    page = otto_client.get(reverse("reviews:second_review", args=[overturned.id]))
    assert page.status_code == 200
    # Blind: nothing of the first decision, nor who gave it.
    assert "rita" not in page.content.decode() and "Decided" not in page.content.decode()

    url = reverse("reviews:second_review", args=[kept.id])
    assert otto_client.post(url, {"outcome": "approved"}).status_code == 302
    assert otto_client.post(url, {"outcome": "approved"}).status_code == 409  # given once
    response = otto_client.post(reverse("reviews:second_review", args=[overturned.id]), {"outcome": "rejected"})
    assert response.status_code == 302
    agreed = dict(SecondReview.objects.values_list("item_id", "agreed"))
    assert agreed == {kept.id: True, overturned.id: False}

    manager = client_for(mona)
    listing = manager.get(reverse("reviews:adjudications")).content.decode()
    assert str(overturned.id)[:8] in listing and str(kept.id)[:8] not in listing
    assert client_for(otto).get(reverse("reviews:adjudications")).status_code == 403

    response = manager.post(reverse("reviews:adjudicate", args=[overturned.id]), {f"{overturned.id}-upheld": "second"})
    assert response.status_code == 302
    after = selectors.type_summary(TYPE)
    assert (after["reviewed"], after["correct"], after["accuracy"]) == (2, 1, 0.5)
    assert GateDecision.objects.get(review_item=overturned).verdict == Verdict.INCORRECT
    assert {run.id: run.result for run in FlowRun.objects.all()} == results
    page = manager.get(reverse("autonomy:type", args=[TYPE])).content.decode()
    assert 'data-left-out="adjudicated">1<' in page
    # Agreement per type: 1 of 2, with its interval.
    agreement = reliability_selectors.agreement_by_type(output_types=[TYPE])[TYPE]
    assert (agreement["count"], agreement["n"], agreement["rate"]) == (1, 2, 0.5)
    assert 0 < agreement["ci_low"] < 0.5 < agreement["ci_high"] < 1
    second = manager.post(reverse("reviews:adjudicate", args=[overturned.id]), {f"{overturned.id}-upheld": "first"})
    assert second.status_code == 409


def test_an_adjudicated_bulk_approval_counts_even_under_the_hygiene_policy(rita, otto, mona):
    set_policy(second_review_rate=1.0, exclude_marked_approvals=True)
    item = invoice_item(1)
    decide_bulk(item_ids=[item.id], user=rita, output_type=TYPE)
    assert selectors.type_summary(TYPE)["reviewed"] == 0
    reliability.second_review_give(item_id=item.id, user=otto, outcome="rejected")
    reliability.second_review_adjudicate(item_id=item.id, user=mona, upheld="first")
    summary = selectors.type_summary(TYPE)
    assert (summary["reviewed"], summary["correct"], summary["excluded_bulk"]) == (1, 1, 0)


def test_a_second_review_waits_for_the_run_to_resume(rita, otto):
    set_policy(second_review_rate=1.0)
    item = invoice_item(1)
    decide(item_id=item.id, user=rita, outcome="approved")
    assert reliability_selectors.second_reviews_for(user=otto).count() == 1
    ReviewItem.objects.filter(id=item.id).update(resumed_at=None)  # as if no worker had taken the decision yet
    assert reliability_selectors.second_reviews_for(user=otto).count() == 0


def test_no_second_review_at_rate_zero_nor_for_a_decision_by_nobody(rita):
    item = invoice_item(1)
    decide(item_id=item.id, user=rita, outcome="approved")
    assert not SecondReview.objects.exists()
    set_policy(second_review_rate=1.0)
    other = invoice_item(2)
    decide(item_id=other.id, user=None, outcome="approved")  # nobody: no reviewer to measure
    assert not SecondReview.objects.exists()


def test_second_review_scope_and_first_reviewer(rita, otto):
    set_policy(second_review_rate=1.0)
    item = invoice_item(1)
    decide(item_id=item.id, user=rita, outcome="approved")
    outsider = user_in_role("dora", "reviewer", "article_draft")
    assert not reliability_selectors.second_reviews_for(user=outsider).exists()
    assert client_for(outsider).get(reverse("reviews:second_review", args=[item.id])).status_code == 404
    assert list(reliability_selectors.second_reviews_for(user=otto)) == list(SecondReview.objects.all())
    with pytest.raises(reliability.SecondReviewError, match="someone else"):
        reliability.second_review_give(item_id=item.id, user=rita, outcome="approved")


def test_an_edit_equal_to_the_first_edit_agrees(rita, otto):
    set_policy(second_review_rate=1.0)
    item = invoice_item(1)
    edit = {**item.output, "vendor": "Acme Supplies Limited"}
    decide(item_id=item.id, user=rita, outcome="approved", edited_output=edit)
    second = reliability.second_review_give(item_id=item.id, user=otto, outcome="approved", edited_output=edit)
    assert second.agreed is True and second.status == SecondReviewStatus.AGREED


def test_concurrent_second_reviews_record_one(rita, otto):
    set_policy(second_review_rate=1.0)
    item = invoice_item(1)
    decide(item_id=item.id, user=rita, outcome="approved")
    with transaction.atomic():
        reliability.second_review_give(item_id=item.id, user=otto, outcome="approved")
    carl = user_in_role("carl", "reviewer", TYPE)
    with pytest.raises(reliability.SecondReviewError) as raised:
        reliability.second_review_give(item_id=item.id, user=carl, outcome="rejected")
    assert raised.value.conflict
    assert SecondReview.objects.get().user == otto


# ---------------------------------------------------------------- the reviewers page


def test_reviewers_page_shows_each_reviewers_figures_within_the_managers_types(rita, otto, mona):
    set_policy(second_review_rate=1.0)
    items = [invoice_item(n) for n in range(4)]
    for seconds, item in zip((10, 20, 30), items, strict=False):
        opened(item, rita, seconds)
        decide(item_id=item.id, user=rita, outcome="approved")
    decide_bulk(item_ids=[items[3].id], user=rita, output_type=TYPE)
    reliability.second_review_give(item_id=items[0].id, user=otto, outcome="approved")
    reliability.second_review_give(item_id=items[1].id, user=otto, outcome="rejected")

    rows = {row["username"]: row for row in reliability_selectors.reviewer_reliability(user=mona)}
    figures = rows["rita"]
    assert figures["decisions"] == 4
    assert figures["handling_median"].n == 3 and figures["handling_median"].value == pytest.approx(20, abs=2)
    assert (figures["agreement"]["count"], figures["agreement"]["n"]) == (1, 2)
    assert (figures["marked"]["count"], figures["marked"]["n"]) == (1, 4)
    assert (figures["edited"]["count"], figures["rejected"]["count"]) == (0, 0)
    assert (rows["otto"]["decisions"], rows["otto"]["agreement"]["n"]) == (0, 2)

    page = client_for(mona).get(reverse("reviews:reviewers"))
    assert page.status_code == 200 and 'data-reviewer="rita"' in page.content.decode()
    assert client_for(rita).get(reverse("reviews:reviewers")).status_code == 403
    # A manager of another type sees none of these reviewers.
    other_manager = user_in_role("olga", "manager", "article_draft")
    assert reliability_selectors.reviewer_reliability(user=other_manager) == []
    assert 'data-reviewer="rita"' not in client_for(other_manager).get(reverse("reviews:reviewers")).content.decode()


# ---------------------------------------------------------------- quantile intervals (pure)


def test_quantile_interval_ranks_match_the_binomial_tables():
    # n = 100, median: the 95% interval runs from the 40th to the 61st value (Conover, Practical Nonparametric
    # Statistics, table A3).
    result = quantile(range(1, 101), 0.5)
    assert (result.value, result.ci_low, result.ci_high) == (50.5, 40, 61)
    assert quantile([], 0.5).value is None
    few = quantile([1.0, 2.0, 3.0], 0.9)
    assert few.ci_low is not None and few.ci_high is None  # too few values above the 90th percentile


@pytest.mark.parametrize(("n", "q"), [(12, 0.5), (40, 0.9), (150, 0.9)])
def test_quantile_interval_covers_the_true_quantile_at_least_95_percent(n, q):
    rng = random.Random(n)
    true = -math.log(1 - q)  # of the exponential distribution
    runs = 2000
    covered = 0
    for _ in range(runs):
        result = quantile([rng.expovariate(1.0) for _ in range(n)], q)
        low = -math.inf if result.ci_low is None else result.ci_low
        high = math.inf if result.ci_high is None else result.ci_high
        covered += low <= true <= high
    assert covered / runs >= 0.94  # 95% less a few simulation errors (sd ≈ 0.5%)


@pytest.mark.parametrize(
    ("url_name", "current"),
    [("reviews:reviewers", "Reviewers"), ("reviews:queue", "Queue")],
    ids=["reviewers", "queue"],
)
def test_the_top_bar_marks_one_section_current(mona, url_name, current):
    # The reviewers page lives under the queue's address: only its own link is current there.
    page = client_for(mona).get(reverse(url_name)).content.decode()
    marked = re.findall(r'<a class="nav__link" href="[^"]*" aria-current="page">([^<]*)</a>', page)
    assert marked == [current]
