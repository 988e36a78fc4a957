"""JSON encoding of flow values, without importing CrewAI (the web process uses it too)."""

from typing import Any

from pydantic_core import to_jsonable_python


def to_json(value: Any) -> Any:
    """Encode flow values (models, dates, sets) as JSON-ready data.

    Unknown objects fall back to their string form rather than failing a step.
    """
    return to_jsonable_python(value, fallback=str)
