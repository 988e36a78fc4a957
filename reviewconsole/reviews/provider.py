"""CrewAI HumanFeedbackProvider that sends a paused step to the review queue."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from crewai.flow.async_feedback.types import HumanFeedbackPending, PendingFeedbackContext
from pydantic import BaseModel

from reviewconsole.reviews.models import ReviewReason
from reviewconsole.reviews.reasons import reason_check
from reviewconsole.reviews.schemas import REVIEW_METADATA_KEY, register_output_schema, with_property_order


class ReviewConsoleProvider:
    """Pause the flow; `save_pending_feedback` then creates the review item.

    `source_spans`, with the run input the output was read from (`source_input`), tells where each field
    was read: a function of the flow's state giving {field path: [1-based line numbers]}. The item page
    then highlights a field's lines in that input when the field is focused.

    The provider only describes the item (type, reason, confidence, schema);
    it writes nothing, because CrewAI persists the pause itself once this
    raises, and that write must be the single transaction that creates the
    item and moves the run to waiting_review.
    """

    def __init__(
        self,
        output_type: str,
        *,
        schema: type[BaseModel] | None = None,
        outcomes: list[str] | None = None,
        reason: str | None = None,
        source_input: str = "",
        source_spans: Callable[[Any], Mapping[str, Any]] | None = None,
    ) -> None:
        self.output_type = output_type
        self.source_input = source_input
        self.source_spans = source_spans
        self.schema = schema
        if schema is not None:
            register_output_schema(output_type, schema)
        self.outcomes = outcomes
        self.reason = reason

    def request_feedback(self, context: PendingFeedbackContext, flow: Any) -> str:
        output = context.method_output
        schema_model = self.schema or (type(output) if isinstance(output, BaseModel) else None)
        state = flow.state
        reason = self.reason or ReviewReason.FLOW_REQUESTED.value
        reason_check(reason)
        context.metadata = {
            **(context.metadata or {}),
            REVIEW_METADATA_KEY: {
                "output_type": self.output_type,
                "reason": reason,
                "confidence": _confidence(output, state),
                "schema": with_property_order(schema_model.model_json_schema()) if schema_model else None,
                "outcomes": list(context.emit or self.outcomes or ["approved", "rejected"]),
                "uses_emit": bool(context.emit),
                "source_spans": self._spans(state),
            },
        }
        raise HumanFeedbackPending(context=context)

    def _spans(self, state: Any) -> dict[str, Any]:
        """{"input": name, "lines": {path: [line, ...]}} with only well-formed entries (line numbers from 1)."""
        if self.source_spans is None or not self.source_input:
            return {}
        lines = {
            str(path): sorted({n for n in numbers if isinstance(n, int) and n > 0})
            for path, numbers in (self.source_spans(state) or {}).items()
            if isinstance(numbers, (list, tuple))
        }
        return {"input": self.source_input, "lines": {path: numbers for path, numbers in lines.items() if numbers}}


def _confidence(output: Any, state: Any) -> float | None:
    for source in (output, state):
        value = source.get("confidence") if isinstance(source, dict) else getattr(source, "confidence", None)
        if isinstance(value, (int, float)):
            return float(value)
    return None
