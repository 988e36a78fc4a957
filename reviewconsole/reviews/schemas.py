"""The pydantic model of each output type, so edits are validated by the flow's own model."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from reviewconsole.reviews.schema_form import deref

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
        _register_plain_step_models()
    return _schemas.get(output_type)


def _register_plain_step_models() -> None:
    """Load the flows; a type paused by a `@human_feedback` step without a provider gets the step's model.

    Such a step registers nothing when its module is imported (`@human_review` does), so its return
    annotation (`def draft(self) -> Draft`) says which model its edits must fit. A model registered
    explicitly wins.
    """
    from reviewconsole.engine.registry import load_flows
    from reviewconsole.engine.structure import feedback_output_type

    for spec in load_flows().values():
        for name, method in spec.flow_class.flow_definition().methods.items():
            feedback = method.human_feedback
            if feedback is None or feedback.provider is not None:
                continue
            model = step_output_model(spec.flow_class, name)
            if model is not None:
                _schemas.setdefault(feedback_output_type(spec, name, feedback.metadata), model)


def step_output_model(flow_class: type, method: str) -> type[BaseModel] | None:
    """The pydantic model a flow step's return annotation names, if it names one."""
    step = inspect.unwrap(getattr(flow_class, method))
    try:
        annotation = inspect.signature(step, eval_str=True).return_annotation
    except (NameError, TypeError, ValueError):
        return None
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


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


class InvalidEdit(ValueError):
    """An edit `validated_edit` refused; `errors` are `{"loc", "msg", "type"}`, one per bad field."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors)
        self.errors = errors


def validated_edit(output_type: str, edit: Any, *, output: Any, schema: Mapping[str, Any] | None) -> Any:
    """The edit as the output type's model dumps it; raises InvalidEdit naming every bad field.

    An edit is the whole corrected output, not a patch:

    - a field the model does not declare is refused ("unknown field"), at any depth, never silently dropped;
    - every field the model declares must be present, at any depth. The defaults exist so that a partial LLM
      extraction parses; they never fill in an edit, so `{}` blanks nothing;
    - the one exception to both: the stored `output` was produced by an older model. A field it has at that
      place may be sent although the model no longer declares it (the model drops it, and the diff shows
      that), and a field it lacks may be left out (the model's default applies, as it did then); so the edit
      form, built from the item's stored schema, can always be submitted;
    - the model then validates the values, with the bounds the flow declares on it (`Field(ge=0,
      max_length=...)`), the same ones its JSON schema shows to API clients and the edit form.

    A type without a model is checked against `schema`, the JSON schema stored with its item, by the first
    two rules only; without either, an edit need only be a JSON object.
    """
    model = output_schema(output_type)
    root = _json_schema(model) if model is not None else schema
    errors = _shape_errors(root, root, edit, [output], ()) if root else []
    dumped = edit
    if model is not None:
        try:
            dumped = model.model_validate(edit).model_dump(mode="json")
        except ValidationError as error:
            reported = {tuple(e["loc"]) for e in errors}
            errors += [
                {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
                for e in error.errors()
                if tuple(e["loc"]) not in reported
            ]
    elif not isinstance(edit, dict):
        errors.append({"loc": [], "msg": "the edited output must be a JSON object", "type": "dict_type"})
    if errors:
        raise InvalidEdit(errors)
    return dumped


@functools.cache
def _json_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema()


_JSON_TYPES: dict[type, tuple[str, ...]] = {
    dict: ("object",),
    list: ("array",),
    str: ("string",),
    bool: ("boolean",),
    int: ("integer", "number"),
    float: ("number",),
    type(None): ("null",),
}


def _fits(node: Mapping[str, Any], value: Any) -> bool:
    """Whether `value`'s JSON type is one `node` allows (a node that names no type allows any)."""
    declared = node.get("type") or ("object" if "properties" in node else None)
    if declared is None:
        return True
    allowed = declared if isinstance(declared, list) else [declared]
    return any(kind in allowed for kind in _JSON_TYPES.get(type(value), ()))


def _shape_errors(
    node: Any, root: Mapping[str, Any], value: Any, stored: list[Any], loc: tuple[Any, ...]
) -> list[dict[str, Any]]:
    """Unknown and missing fields of `value` against the schema `node`, recursively.

    `stored` holds what the stored output has at this place (every row, for an entry of a list): a field one
    of them has is not unknown, and one none of them has may be left out, unless nothing is stored here.
    """
    node = deref(node, root)
    members = node.get("anyOf") or node.get("oneOf")
    if isinstance(members, list):
        fitting = [member for member in (deref(m, root) for m in members) if _fits(member, value)]
        if len(fitting) != 1:
            return []  # the value is of none of the types, or several could take it: the model's validation says
        node = {**fitting[0], **{k: v for k, v in node.items() if k not in ("anyOf", "oneOf")}}
    errors: list[dict[str, Any]] = []
    if isinstance(value, dict) and isinstance(node.get("properties"), Mapping):
        properties = node["properties"]
        seen = [s for s in stored if isinstance(s, dict)]
        if node.get("additionalProperties") is not True:  # a model with extra="allow" keeps undeclared fields
            errors += [
                {"loc": [*loc, key], "msg": "unknown field", "type": "extra_forbidden"}
                for key in value
                if key not in properties and not any(key in s for s in seen)
            ]
        for key, child in properties.items():
            if key in value:
                errors += _shape_errors(child, root, value[key], [s[key] for s in seen if key in s], (*loc, key))
            elif not seen or any(key in s for s in seen):
                errors.append({"loc": [*loc, key], "msg": "Field required", "type": "missing"})
    elif isinstance(value, dict) and isinstance(node.get("additionalProperties"), Mapping):
        seen = [s for s in stored if isinstance(s, dict)]
        for key, child_value in value.items():
            child = node["additionalProperties"]
            errors += _shape_errors(child, root, child_value, [s[key] for s in seen if key in s], (*loc, key))
    elif isinstance(value, list) and isinstance(node.get("items"), Mapping):
        rows = [row for s in stored if isinstance(s, list) for row in s]
        for index, entry in enumerate(value):
            errors += _shape_errors(node["items"], root, entry, rows, (*loc, index))
    return errors
