"""Hands a reviewer's decision to a paused CrewAI flow and continues it.

No LLM is asked to interpret an explicit button press. Every flow receives the
reviewed output (edited or not, as the step's model where one is known) in
`HumanFeedbackResult.output` and the decision's facts in its `metadata`
(`decision_facts`). Flows that route with `@human_feedback(emit=...)` get a
deterministic LLM that answers the chosen outcome; flows without `emit` get
the reviewer's comment as the feedback text, as a person typing it would give.
"""

from __future__ import annotations

from typing import Any

from reviewconsole.engine import replay
from reviewconsole.engine.context import Execution
from reviewconsole.engine.models import FlowRun, PendingFeedback
from reviewconsole.engine.persistence import DjangoFlowPersistence
from reviewconsole.llm.decision_model import OutcomeLLM
from reviewconsole.reviews.models import ReviewItem, ReviewStatus
from reviewconsole.reviews.schemas import output_schema, step_output_model


def decision_facts(item: ReviewItem) -> dict[str, Any]:
    """What a flow reads from `HumanFeedbackResult.metadata` besides its own metadata."""
    decision = item.decision
    return {
        "outcome": decision.outcome,
        "edited": decision.edited_output is not None,
        "reason_code": decision.reason_code,
        "reviewer": decision.user.get_username() if decision.user else None,
        "expired": item.status == ReviewStatus.EXPIRED,
    }


def reviewed_output(item: ReviewItem, flow_class: type, method: str) -> Any:
    """The output the reviewer let through: their edit if they made one, as the paused step's model.

    The step's own return annotation says which model it is; a step without one gets the model its provider
    declared for the output type (`@human_review`, `ReviewConsoleProvider(schema=...)`). A plain step that
    returns something else (a str, say) gets it back as it was, even when another step of the flow pauses
    a model under the same output type.
    """
    edited = item.decision.edited_output
    output = edited if edited is not None else item.output
    model = step_output_model(flow_class, method)
    if model is None and flow_class.flow_definition().methods[method].human_feedback.provider is not None:
        model = output_schema(item.output_type)
    return model.model_validate(output) if model is not None else output


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

    decision = item.decision
    pending = flow.pending_feedback
    # The flow gets its own model back, as if the step had not paused; CrewAI puts the context's output and
    # metadata into the HumanFeedbackResult it builds.
    pending.method_output = reviewed_output(item, flow_class, pause.method)
    pending.metadata = {**(pending.metadata or {}), **decision_facts(item)}
    if item.uses_emit:
        pending.llm = OutcomeLLM(outcome=decision.outcome)
        # Non-empty feedback makes CrewAI ask the (deterministic) LLM for the outcome.
        return flow.resume(decision.comment or decision.outcome)
    return flow.resume(decision.comment)
