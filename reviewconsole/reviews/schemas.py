"""The pydantic model of each output type, so edits are validated by the flow's own model."""

from __future__ import annotations

from typing import Any

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


def with_property_order(schema: Any) -> Any:
    """The JSON schema with each object's field order recorded as `propertyOrder`.

    Review items store their schema in a JSON column, and PostgreSQL's jsonb
    sorts object keys; the list keeps the order the model declares, which is
    the order a reviewer reads and edits fields in.
    """
    if isinstance(schema, dict):
        ordered = {key: with_property_order(value) for key, value in schema.items()}
        if isinstance(schema.get("properties"), dict):
            ordered["propertyOrder"] = list(schema["properties"])
        return ordered
    if isinstance(schema, list):
        return [with_property_order(value) for value in schema]
    return schema
