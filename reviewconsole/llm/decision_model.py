"""The decision model: answers the outcome a reviewer chose, so a resumed @human_feedback(emit=...) routes exactly."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pydantic import Field, model_validator

from reviewconsole.llm.offline import OfflineLLM

if TYPE_CHECKING:
    from crewai.utilities.types import LLMMessage

OUTCOME_MODEL_NAME = "decision"


class OutcomeLLM(OfflineLLM):
    """Always decides ``outcome``: answers ``{"outcome": "<outcome>"}`` (model "decision").

    For ``@human_feedback(emit=[...], llm=OutcomeLLM(outcome="approved"))``:
    CrewAI's ``_collapse_to_outcome`` asks the LLM to map the reviewer's text to
    one of the emitted outcomes with a response model that has an ``outcome``
    field; this model's fixed answer makes that routing exact. It makes no
    network call and emits no LLM call events: the outcome is a person's
    decision, recorded with the review, and a run's timeline must not show it
    as a model's call. An outcome not in ``emit`` surfaces as CrewAI's
    ``HumanFeedbackCollapseError``.
    """

    model: str = OUTCOME_MODEL_NAME
    provider: str = "decision"
    outcome: str = Field(min_length=1)

    @model_validator(mode="before")
    @classmethod
    def _outcome_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            data = dict(data)
            data.setdefault("model", OUTCOME_MODEL_NAME)
            data.setdefault("provider", "decision")
        return data

    def call(self, messages: str | list[LLMMessage], *args: Any, **kwargs: Any) -> str:
        """The chosen outcome as JSON, whatever is asked; no events, hooks or usage (see the class)."""
        return json.dumps({"outcome": self.outcome})

    async def acall(self, messages: str | list[LLMMessage], *args: Any, **kwargs: Any) -> str:
        return self.call(messages)
