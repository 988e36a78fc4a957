"""Valid example data for any pydantic model, built from its JSON schema: the demo model's fallback answer.

Deterministic and free of CrewAI: strings carry the field name and a snippet of
the prompt, numbers the nearest value the constraints allow, lists are as short
as allowed. The demo model also uses it for a tool's arguments (the tool's
``args_schema``).
"""

from __future__ import annotations

import json
import math
import re
import uuid
from typing import Any

from pydantic import BaseModel, ValidationError

_SNIPPET_CHARS = 80
_MAX_SCHEMA_DEPTH = 8
_FIXED_FORMATS: dict[str, str] = {
    "date-time": "2025-01-01T00:00:00Z",
    "date": "2025-01-01",
    "time": "00:00:00",
    "duration": "PT0S",
    "email": "demo@example.com",
    "idn-email": "demo@example.com",
    "uri": "https://example.com/demo",
    "url": "https://example.com/demo",
    "iri": "https://example.com/demo",
    "uri-reference": "https://example.com/demo",
    "hostname": "example.com",
    "ipv4": "127.0.0.1",
    "ipv6": "::1",
    "ipvanyaddress": "127.0.0.1",
    "ipvanyinterface": "127.0.0.1/32",
    "ipvanynetwork": "127.0.0.0/8",
}
_PATTERN_CANDIDATES = ("demo", "a", "A", "0", "1", "x", "Demo", "demo-1", "DEMO")


def first_line(text: str) -> str:
    """First non-blank line, shortened at a word boundary: the answer's anchor."""
    for line in text.splitlines():
        line = line.strip()
        if line:
            if len(line) <= _SNIPPET_CHARS:
                return line
            cut = line[:_SNIPPET_CHARS].rsplit(" ", 1)[0] or line[:_SNIPPET_CHARS]
            return cut.rstrip(" ,.;:") + "…"
    return "(empty prompt)"


def example_from_model(model: type[BaseModel], prompt_text: str) -> dict[str, Any]:
    """Build a plausible, valid instance of ``model`` from its JSON schema.

    Used when no responder is registered, so any ``response_model`` a flow
    asks for gets an answer that validates: strings carry the field name and
    the first line of ``prompt_text``, numbers are 0 (or the nearest value the constraints allow;
    ``confidence`` floats are 0.9), booleans are false, lists are as short as
    allowed, enums take their first value and nested models recurse.

    Raises:
        ValueError: the generated data does not validate (custom validators,
            unsatisfiable patterns); register a responder for such models.
    """
    data = example_from_schema(model.model_json_schema(), prompt_text)
    if not isinstance(data, dict):
        raise ValueError(f"{model.__name__} does not describe a JSON object")
    try:
        model.model_validate(data)
    except ValidationError as exc:
        raise ValueError(
            f"DemoLLM could not build a valid {model.__name__} from its schema; "
            f"register a responder for it (reviewconsole.llm.responders.register_responder): {exc}"
        ) from exc
    return data


def example_from_schema(schema: dict[str, Any], prompt_text: str) -> Any:
    """Example data for a JSON schema (a tool's arguments, a schema a prompt asks for), by the rules above."""
    return _example(schema, root=schema, name="", snippet=first_line(prompt_text), depth=0)


def _resolve_ref(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = schema["$ref"]
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target.get(part, {}) if isinstance(target, dict) else {}
    siblings = {key: value for key, value in schema.items() if key != "$ref"}
    return {**target, **siblings}


def _humanize(name: str) -> str:
    return re.sub(r"[_\-]+", " ", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)).strip().capitalize()


def _example(schema: Any, *, root: dict[str, Any], name: str, snippet: str, depth: int) -> Any:
    if not isinstance(schema, dict):
        return _text(name, snippet, {})
    if "$ref" in schema:
        if depth > _MAX_SCHEMA_DEPTH:
            return None
        return _example(_resolve_ref(schema, root), root=root, name=name, snippet=snippet, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [option for option in schema[key] if option.get("type") != "null"]
            if not options or depth > _MAX_SCHEMA_DEPTH:
                return None
            return _example(options[0], root=root, name=name, snippet=snippet, depth=depth + 1)
    if "allOf" in schema:
        merged: dict[str, Any] = {key: value for key, value in schema.items() if key != "allOf"}
        for part in schema["allOf"]:
            merged.update(_resolve_ref(part, root) if "$ref" in part else part)
        return _example(merged, root=root, name=name, snippet=snippet, depth=depth + 1)

    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None and "properties" in schema:
        kind = "object"

    if kind == "object":
        if depth > _MAX_SCHEMA_DEPTH:
            return {}
        properties = schema.get("properties") or {}
        return {
            prop: _example(sub, root=root, name=prop, snippet=snippet, depth=depth + 1)
            for prop, sub in properties.items()
        }
    if kind == "array":
        return _array(schema, root=root, name=name, snippet=snippet, depth=depth)
    if kind == "string":
        return _string(schema, root=root, name=name, snippet=snippet, depth=depth)
    if kind in ("integer", "number"):
        return _number(schema, name=name, integer=kind == "integer")
    if kind == "boolean":
        return False
    if kind == "null":
        return None
    return _text(name, snippet, schema)


def _array(schema: dict[str, Any], *, root: dict[str, Any], name: str, snippet: str, depth: int) -> list[Any]:
    singular = name[:-1] if name.endswith("s") else name
    prefix = schema.get("prefixItems")
    if prefix:
        return [
            _example(item, root=root, name=f"{singular} {index + 1}", snippet=snippet, depth=depth + 1)
            for index, item in enumerate(prefix)
        ]
    count = int(schema.get("minItems", 0))
    items = schema.get("items", {})
    return [
        _example(items, root=root, name=f"{singular} {index + 1}", snippet=snippet, depth=depth + 1)
        for index in range(count)
    ]


def _string(schema: dict[str, Any], *, root: dict[str, Any], name: str, snippet: str, depth: int) -> str:
    fmt = schema.get("format")
    if fmt in _FIXED_FORMATS:
        return _FIXED_FORMATS[fmt]
    if fmt == "uuid":
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"demo:{name}:{snippet}"))
    if "contentSchema" in schema:  # pydantic ``Json[...]``: the string holds JSON
        inner = _example(schema["contentSchema"], root=root, name=name, snippet=snippet, depth=depth + 1)
        return json.dumps(inner)
    pattern = schema.get("pattern")
    if pattern:
        text = _text(name, snippet, schema)
        for candidate in (text, *_PATTERN_CANDIDATES):
            try:
                if re.search(pattern, candidate):
                    return _fit_length(candidate, schema)
            except re.error:
                break
        return _fit_length(text, schema)
    return _text(name, snippet, schema)


def _text(name: str, snippet: str, schema: dict[str, Any]) -> str:
    label = _humanize(name) if name else ""
    text = f"{label}: {snippet}" if label else snippet
    return _fit_length(text, schema)


def _fit_length(text: str, schema: dict[str, Any]) -> str:
    min_length = int(schema.get("minLength", 0))
    max_length = schema.get("maxLength")
    while len(text) < min_length:
        text = f"{text} {text}" if text else "demo"
    if max_length is not None:
        text = text[: int(max_length)]
    return text


def _number(schema: dict[str, Any], *, name: str, integer: bool) -> int | float:
    preferred: float = 0.9 if not integer and "confidence" in name.lower() else 0
    minimum, maximum = schema.get("minimum"), schema.get("maximum")
    ex_minimum, ex_maximum = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")

    def fits(value: float) -> bool:
        return (
            (minimum is None or value >= minimum)
            and (maximum is None or value <= maximum)
            and (ex_minimum is None or value > ex_minimum)
            and (ex_maximum is None or value < ex_maximum)
        )

    multiple = schema.get("multipleOf")
    if fits(preferred):
        value: float = preferred
    elif integer:
        low = math.ceil(minimum) if minimum is not None else None
        if ex_minimum is not None:
            low = max(low if low is not None else -math.inf, math.floor(ex_minimum) + 1)
        high = math.floor(maximum) if maximum is not None else None
        if ex_maximum is not None:
            high = min(high if high is not None else math.inf, math.ceil(ex_maximum) - 1)
        value = low if low is not None else (high if high is not None else 0)
    else:
        low = minimum if minimum is not None else ex_minimum
        high = maximum if maximum is not None else ex_maximum
        if low is not None and high is not None:
            value = (low + high) / 2
        elif low is not None:
            value = low if minimum is not None else low + 1
        else:
            value = high if maximum is not None else high - 1
    if multiple and value % multiple:
        value = math.ceil(value / multiple) * multiple
    return int(value) if integer else float(value)
