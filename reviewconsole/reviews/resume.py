"""Hands a reviewer's decision to a paused CrewAI flow and continues it.

No LLM is asked to interpret an explicit button press. Flows that route with
`@human_feedback(emit=...)` get a deterministic LLM that answers the chosen
outcome; flows without `emit` receive the decision as a JSON payload.
"""

from __future__ import annotations

import json
from typing import Any

from reviewconsole.engine import replay
from reviewconsole.engine.context import Execution
from reviewconsole.engine.llms import OutcomeLLM
from reviewconsole.engine.models import FlowRun, PendingFeedback
from reviewconsole.engine.persistence import DjangoFlowPersistence
from reviewconsole.reviews.models import ReviewItem, ReviewStatus
from reviewconsole.reviews.schemas import output_schema


def decision_payload(item: ReviewItem) -> dict[str, Any]:
    """What a flow without `emit` reads from `HumanFeedbackResult.feedback`."""
    decision = item.decision
    edited = decision.edited_output is not None
    return {
        "outcome": decision.outcome,
        "output": decision.edited_output if edited else item.output,
        "edited": edited,
        "comment": decision.comment,
        "reason_code": decision.reason_code,
        "reviewer": decision.user.get_username() if decision.user else None,
        "expired": item.status == ReviewStatus.EXPIRED,
    }


def resume_paused_flow(
    *,
    flow_class: type,
    run: FlowRun,
    pause: PendingFeedback,
    execution: Execution,
    persistence: DjangoFlowPersistence,
) -> Any:
    """Restore the flow from its pause and resume it with the item's decision."""
    item = ReviewItem.objects.select_related("decision__user").get(pending=pause)
    flow = flow_class.from_pending(str(run.id), persistence)
    replay.install(flow, execution)
    for method, occurrence in execution.recorded:
        execution.occurrences[method] = max(execution.occurrences.get(method, 0), occurrence)
    # The paused method completes during resume without passing through
    # `_execute_method`, so count its occurrence here.
    execution.occurrences[pause.method] = execution.occurrences.get(pause.method, 0) + 1

    payload = decision_payload(item)
    if item.uses_emit:
        pending = flow.pending_feedback
        pending.llm = OutcomeLLM(outcome=payload["outcome"])
        # The flow gets its own model back, as if the step had not paused.
        schema = output_schema(item.output_type)
        pending.method_output = schema.model_validate(payload["output"]) if schema else payload["output"]
        # Non-empty feedback makes CrewAI ask the (deterministic) LLM for the outcome.
        return flow.resume(payload["comment"] or payload["outcome"])
    return flow.resume(json.dumps(payload))
