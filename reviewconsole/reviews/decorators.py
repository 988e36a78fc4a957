"""The no-`emit` review pattern, ready-made: pause for review, then route on the decision.

@start()
@human_review(output_type="invoice", schema=InvoiceData)
def extract(self) -> InvoiceData: ...

@router(extract, emit=["approved", "rejected"])
def route(self, result: HumanFeedbackResult) -> str:
    decision = review_decision(result, InvoiceData)
    self.state.invoice = decision.output      # an InvoiceData, edits included
    return decision.outcome
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from crewai.flow.human_feedback import HumanFeedbackResult, human_feedback
from pydantic import BaseModel

from reviewconsole.reviews.provider import ReviewConsoleProvider

M = TypeVar("M", bound=BaseModel)


def human_review(
    *,
    output_type: str,
    schema: type[BaseModel],
    outcomes: Sequence[str] = ("approved", "rejected"),
    message: str = "Review this output.",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """CrewAI's `@human_feedback` without `emit`, sending the step to the review queue."""
    return human_feedback(
        message=message,
        provider=ReviewConsoleProvider(output_type=output_type, schema=schema, outcomes=list(outcomes)),
    )


@dataclass(frozen=True)
class ReviewDecision(Generic[M]):
    """A reviewer's decision as a flow reads it."""

    outcome: str
    output: M
    edited: bool
    comment: str
    reason_code: str
    reviewer: str | None
    expired: bool


def review_decision(result: HumanFeedbackResult, schema: type[M]) -> ReviewDecision[M]:
    """The decision in `result`: its facts from `metadata`, the comment from `feedback`, and the output
    (edited or not) validated as `schema`, also when a replay after a crash hands it back as a dict."""
    facts = result.metadata
    return ReviewDecision(
        outcome=facts["outcome"],
        output=schema.model_validate(result.output),
        edited=facts["edited"],
        comment=result.feedback,
        reason_code=facts.get("reason_code", ""),
        reviewer=facts.get("reviewer"),
        expired=facts.get("expired", False),
    )
