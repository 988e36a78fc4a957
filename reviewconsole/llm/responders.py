"""Answers the demo model gives for named response models, registered by the flows that need them.

A flow that branches on a structured answer needs the demo model to give a
meaningful one (a verdict that depends on the document, say) rather than the
schema's first enum value; its module registers that logic here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

Responder = Callable[[str], dict[str, Any] | BaseModel]
"""Builds a demo answer for one response model from the whole prompt text."""

DEMO_RESPONDERS: dict[str, Responder] = {}
"""Response-model class name -> responder; consulted before the schema fallback."""


def _model_key(model: type[BaseModel] | str) -> str:
    return model if isinstance(model, str) else model.__name__


def register_responder(model: type[BaseModel] | str, fn: Responder) -> None:
    """Make ``DemoLLM`` answer ``model`` (a class or its name) with ``fn(prompt_text)``.

    Flows that branch on a structured answer need the demo model to give a
    meaningful one (a verdict that depends on the document, say) rather than
    the schema's first enum value; the flow module registers that logic here.
    """
    DEMO_RESPONDERS[_model_key(model)] = fn


def unregister_responder(model: type[BaseModel] | str) -> None:
    """Remove a responder; unknown names are ignored so cleanup never fails."""
    DEMO_RESPONDERS.pop(_model_key(model), None)


def _feedback_outcome(prompt_text: str) -> dict[str, Any]:
    """Demo collapse of reviewer text: the outcome the feedback names, else the first.

    Answers the ``FeedbackOutcome`` model CrewAI builds in ``_collapse_to_outcome``
    so a demo reviewer who types "rejected, needs sources" routes to
    ``rejected``. Words match an outcome when they share all but its last two
    letters ("approve" -> "approved").
    """
    match = re.search(r"Feedback:\s*(.*?)\n\s*\n\s*Possible outcomes:\s*([^\n]+)", prompt_text, re.DOTALL)
    if not match:
        raise ValueError("prompt is not a CrewAI human-feedback collapse prompt")
    feedback = match.group(1).lower()
    outcomes = [outcome.strip() for outcome in match.group(2).split(",") if outcome.strip()]
    words = re.findall(r"[a-z0-9_]+", feedback)
    best: str | None = None
    for outcome in outcomes:
        key = outcome.lower()
        stem = key[: max(4, len(key) - 2)]
        named = key in feedback or any(word.startswith(stem) for word in words)
        if named and (best is None or len(outcome) > len(best)):
            best = outcome
    if best is None:
        if not outcomes:
            raise ValueError("collapse prompt lists no outcomes")
        best = outcomes[0]
    return {"outcome": best}


register_responder("FeedbackOutcome", _feedback_outcome)
