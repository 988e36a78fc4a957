"""The pydantic model of each output type, so edits are validated by the flow's own model."""

from __future__ import annotations

from pydantic import BaseModel

# Where ReviewConsoleProvider puts the review item's description in CrewAI's
# pending-feedback metadata.
REVIEW_METADATA_KEY = "review_console"

_schemas: dict[str, type[BaseModel]] = {}


def register_output_schema(output_type: str, model: type[BaseModel]) -> None:
    """Called when a flow module declares a review step for `output_type`."""
    _schemas[output_type] = model


def output_schema(output_type: str) -> type[BaseModel] | None:
    """The model for `output_type`, loading the flow modules on first use."""
    if output_type not in _schemas:
        from reviewconsole.engine.registry import load_flows

        load_flows()
    return _schemas.get(output_type)
