"""The console as CrewAI's default human-feedback provider, for the flows the engine runs.

A `@human_feedback` step that names no `provider` asks CrewAI's `flow_config.hitl_provider`, the documented
hook for a deployment's default, and without one reads `input()`, which a worker does not have. The engine
sets that hook, once per process, to a provider that sends the step of a run it executes to the registered
pause handler (the review queue), with the output type the flow declares (`structure.feedback_output_type`).
Any other flow in the process, such as one a step kicks off itself, gets what it got before: the provider
set earlier, or, as CrewAI does without one, the flow's own `_request_human_feedback` (its console prompt).
"""

from __future__ import annotations

from typing import Any

from crewai.flow.async_feedback.types import HumanFeedbackProvider, PendingFeedbackContext
from crewai.flow.flow_config import flow_config

from reviewconsole.engine.context import current_execution
from reviewconsole.engine.pause_handler import pause_handler
from reviewconsole.engine.registry import get_flow
from reviewconsole.engine.structure import feedback_output_type


class EngineFeedbackProvider:
    """Pauses an engine run's step into the pause handler; hands any other flow's step to `fallback`."""

    def __init__(self, fallback: HumanFeedbackProvider | None) -> None:
        self.fallback = fallback

    def request_feedback(self, context: PendingFeedbackContext, flow: Any) -> Any:
        execution = current_execution.get()
        # The flow instance, not just the run id: a flow that a step kicks off runs under the same execution.
        if execution is None or execution.flow is not flow:
            if self.fallback is not None:
                return self.fallback.request_feedback(context, flow)
            return flow._request_human_feedback(
                message=context.message,
                output=context.method_output,
                metadata=context.metadata,
                emit=context.emit,
                method_name=context.method_name,
            )
        output_type = feedback_output_type(get_flow(execution.flow_name), context.method_name, context.metadata)
        return pause_handler().feedback_provider(output_type=output_type).request_feedback(context, flow)


def install_default_feedback_provider() -> None:
    """Make the engine CrewAI's default feedback provider in this process (idempotent)."""
    if not isinstance(flow_config.hitl_provider, EngineFeedbackProvider):
        flow_config.hitl_provider = EngineFeedbackProvider(fallback=flow_config.hitl_provider)
