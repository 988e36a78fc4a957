"""What the API's OpenAPI document says beyond what ninja derives: error bodies and self-contained schemas.

Every status an operation can answer is documented with its body, so a client (or schemathesis) can rely on
the document: `error_responses` for the statuses an operation gives itself, while the ones every operation
shares (400 for input the edge refuses, 401 without credentials) are added by `reviewconsole.api`.
"""

from __future__ import annotations

from typing import Any

import pydantic
from ninja import Schema


class ErrorDetail(Schema):
    loc: list[str | int] = pydantic.Field(description='Where the input is wrong, e.g. ["body", "outcome"].')
    msg: str
    type: str


class ErrorOut(Schema):
    """Every error answer: a message, or for invalid input one entry per problem naming where it is."""

    detail: str | list[ErrorDetail]


def error_responses(*statuses: int) -> dict[int, type[ErrorOut]]:
    """`response=` entries for the error statuses an operation answers, all with the ErrorOut body."""
    return dict.fromkeys(statuses, ErrorOut)


def inline_refs(schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON Schema with its `$defs` substituted in place, to embed anywhere in the document.

    Pydantic points at `#/$defs/...`, which means nothing once the schema sits inside an OpenAPI operation
    (a dangling `$ref`). Models that refer to themselves cannot be inlined and are refused.
    """
    definitions = schema.get("$defs", {})

    def resolve(node: Any, seen: tuple[str, ...]) -> Any:
        if isinstance(node, list):
            return [resolve(item, seen) for item in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.removeprefix("#/$defs/")
            if name in seen:
                raise ValueError(f"'{name}' refers to itself; it cannot be inlined")
            siblings = {key: value for key, value in node.items() if key != "$ref"}
            return {**resolve(definitions[name], (*seen, name)), **resolve(siblings, seen)}
        return {key: resolve(value, seen) for key, value in node.items() if key != "$defs"}

    return resolve(schema, ())
