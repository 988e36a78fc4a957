"""Running a conformance case two ways: under the console (a FlowRun, reviews decided) and under plain CrewAI."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from crewai.flow.async_feedback.types import HumanFeedbackPending
from crewai.flow.persistence.sqlite import SQLiteFlowPersistence
from crewai.utilities import llm_utils

from reviewconsole.engine.encoding import to_json
from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.registry import get_flow
from reviewconsole.reviews.models import ReviewItem, ReviewStatus
from reviewconsole.reviews.services import decide
from tests.conformance.cases import Case, Review
from tests.conformance.common import build_llm


def without_id(state: Any) -> Any:
    """A flow's state minus its `id`, which differs between any two runs."""
    return {key: value for key, value in state.items() if key != "id"} if isinstance(state, dict) else state


def run_plain(case: Case, tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """Run the case under plain CrewAI: `kickoff()` on CrewAI's SQLite persistence, no engine.

    A person answers at CrewAI's own `input()` prompt, or, for a step whose provider pauses, through
    `from_pending` and `resume`. Everything runs on the demo model, as `LLM_MODEL=demo` means: an agent
    without `llm=` gets it too, and so does a paused step's `emit` collapse, whose custom LLM CrewAI's saved
    context keeps only by name.

    Returns the result and the state, as JSON.
    """
    flow_class = get_flow(case.flow).flow_class
    persistence = SQLiteFlowPersistence(str(tmp_path / "plain-crewai.db"))
    answers = iter(review.comment for review in case.reviews)
    with monkeypatch.context() as patched:
        patched.setattr("builtins.input", lambda prompt="": next(answers))
        patched.setattr(llm_utils, "_llm_via_environment_or_fallback", build_llm)
        flow = flow_class(persistence=persistence)
        outcome = flow.kickoff(inputs=case.inputs)
        while isinstance(outcome, HumanFeedbackPending):
            flow = flow_class.from_pending(outcome.context.flow_id, persistence)
            if flow.pending_feedback.emit:
                flow.pending_feedback.llm = build_llm()
            outcome = flow.resume(next(answers))
        state = flow.state if isinstance(flow.state, dict) else flow.state.model_dump()
    return to_json(outcome), without_id(to_json(state))


def decide_pending(run: FlowRun, reviews: Iterator[Review], reviewer: Any) -> bool:
    """Decide the run's pending review item, if it has one, with the next of `reviews`."""
    item = ReviewItem.objects.filter(run=run, status=ReviewStatus.PENDING).first()
    if item is None:
        return False
    review = next(reviews, None)
    assert review is not None, f"run {run.id} paused more often than its case has reviews"
    decide(
        item_id=item.id,
        user=reviewer,
        outcome=review.outcome,
        comment=review.comment,
        reason_code=review.reason_code,
    )
    return True


def decide_reviews(run: FlowRun, reviews: Iterator[Review], reviewer: Any) -> FlowRun:
    """With inline tasks: decide each pause of the run in turn, until it stops waiting for review."""
    run.refresh_from_db()
    while run.status == RunStatus.WAITING_REVIEW and decide_pending(run, reviews, reviewer):
        run.refresh_from_db()
    return run
