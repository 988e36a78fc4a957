"""Edit forms generated from an output's JSON schema, and their POST parsed back into JSON.

The schema is the one pydantic's `model_json_schema()` produced when the item was created ($defs and $ref
for nested models, `anyOf [X, null]` for optional fields). `build_form` turns it and a value into a tree of
`FormField`s that the templates render, for reading or for editing; `parse_form` reads the browser's POST
back into the same JSON shape.

Parsing only coerces strings to JSON types (numbers, booleans, dates, enum members) and reports what cannot
be coerced; `schemas.validated_edit` (the output type's model, strictly), in `services.decide`, remains the
one validator of an edit. The schema's bounds show as input attributes and hints.
Both report errors as `{"loc": [...], "msg": ...}`, and `build_form` puts each next to the field it names.

Input names are dotted paths under `output`: `output.vendor`, `output.line_items.0.amount`. A row of a list
of objects carries a hidden `__row` marker, a `__delete` checkbox and, for the blank row offered for
adding one, `__extra`; rows are renumbered in order, so removing one leaves no gap.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from reviewconsole.engine.checks import MISSING, SEVERITIES
from reviewconsole.inputs import UnsafeInputError, json_loads

PREFIX = "output"
ROW_MARK = "__row"
ROW_DELETE = "__delete"
ROW_EXTRA = "__extra"

# Nested models deeper than this (or recursive ones) are edited as JSON.
MAX_DEPTH = 8
# Strings longer than this, or with a line break, get a textarea.
LONG_TEXT = 120
LONG_TEXT_NAMES = ("text", "description", "notes", "note", "body", "comment", "summary", "raw", "address")
# A long text's editor gets a row per this many characters of a line, between these many rows: sized to its
# text, as far as a screen allows (CSS `field-sizing: content` does it exactly where supported).
TEXT_ROW_CHARS = 80
TEXT_ROWS = (4, 30)
# A number named like this (or ending "_" + one of them) is an amount of money: shown with two decimals and the
# currency of the nearest object that names one.
MONEY_NAMES = ("amount", "total", "subtotal", "price", "cost", "tax", "fee", "balance")
CURRENCY_KEY = "currency"

Kind = Literal[
    "text", "textarea", "number", "integer", "boolean", "tristate", "date", "datetime", "enum",
    "object", "table", "cards", "lines", "json",
]  # fmt: skip
SCALAR_KINDS = frozenset({"text", "textarea", "number", "integer", "boolean", "tristate", "date", "datetime", "enum"})
NUMERIC_KINDS = frozenset({"number", "integer"})

TRISTATE_CHOICES: list[tuple[str, Any, str]] = [("true", True, "Yes"), ("false", False, "No")]

_MISSING: Any = object()
_INTEGER = re.compile(r"^[-+]?\d+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class Raw(str):
    """A string as the browser sent it, shown back unchanged when a form is re-rendered with errors."""


@dataclass
class Spec:
    """One resolved schema node: what kind of input edits it and how its value is coerced."""

    kind: Kind
    label: str
    help: str = ""
    nullable: bool = False
    required: bool = False
    default: Any = _MISSING
    # (key sent by the browser, JSON value, label)
    choices: list[tuple[str, Any, str]] = field(default_factory=list)
    properties: list[tuple[str, Spec]] = field(default_factory=list)
    items: Spec | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------- schema → Spec


def _humanize(key: str) -> str:
    return key.replace("_", " ").strip().capitalize() or key


def deref(node: Any, root: Mapping[str, Any]) -> dict[str, Any]:
    """Follow local `$ref`s (and single-member `allOf`), keeping the referring node's own keys."""
    if not isinstance(node, Mapping):
        return {}
    node = dict(node)
    for _ in range(32):
        if isinstance(node.get("$ref"), str):
            ref = node.pop("$ref")
            if not ref.startswith("#/"):
                return node
            target: Any = root
            for part in ref[2:].split("/"):
                target = (
                    target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, Mapping) else {}
                )
            node = {**(target if isinstance(target, Mapping) else {}), **node}
        elif isinstance(node.get("allOf"), list) and len(node["allOf"]) == 1:
            member = node.pop("allOf")[0]
            node = {**(member if isinstance(member, Mapping) else {}), **node}
        else:
            return node
    return node


def _in_declared_order(node: Mapping[str, Any], properties: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Properties in the model's field order.

    PostgreSQL's jsonb does not keep key order, so the stored schema carries
    the order as `propertyOrder` (see reviews.schemas.with_property_order).
    """
    order = [name for name in node.get("propertyOrder") or [] if name in properties]
    return [(name, properties[name]) for name in order] + [
        (name, child) for name, child in properties.items() if name not in order
    ]


def _is_null(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "null" or ("const" in node and node["const"] is None)


def _choice_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _choices(values: list[Any]) -> list[tuple[str, Any, str]]:
    return [(_choice_key(v), v, str(v) if not isinstance(v, bool) else ("Yes" if v else "No")) for v in values]


def _enum_values(node: Mapping[str, Any]) -> list[Any] | None:
    if isinstance(node.get("enum"), list):
        return [v for v in node["enum"] if v is not None]
    if "const" in node:
        return [node["const"]]
    return None


def _wants_textarea(key: str, node: Mapping[str, Any], value: Any) -> bool:
    if isinstance(value, str) and ("\n" in value or len(value) > LONG_TEXT):
        return True
    if node.get("widget") == "text":  # one line by nature (a title, an address), however long it may be
        return False
    if isinstance(node.get("maxLength"), int) and node["maxLength"] > 2 * LONG_TEXT:
        return True
    if node.get("widget") == "textarea" or node.get("format") == "textarea":
        return True
    return any(key.lower() == hint or key.lower().endswith("_" + hint) for hint in LONG_TEXT_NAMES)


def _number_attrs(node: Mapping[str, Any], *, integer: bool) -> dict[str, Any]:
    attrs: dict[str, Any] = {"step": 1 if integer else "any"}
    for name, attr in (
        ("minimum", "min"),
        ("exclusiveMinimum", "min"),
        ("maximum", "max"),
        ("exclusiveMaximum", "max"),
    ):
        if isinstance(node.get(name), int | float) and not isinstance(node.get(name), bool):
            attrs[attr] = node[name]
    return attrs


def spec_for(
    node: Any,
    root: Mapping[str, Any],
    *,
    key: str = "",
    required: bool = False,
    value: Any = None,
    depth: int = 0,
) -> Spec:
    """The Spec of one schema node; `value` only refines presentation (a long string gets a textarea)."""
    outer = node if isinstance(node, Mapping) else {}
    label = outer.get("title") if isinstance(outer.get("title"), str) and key else None
    label = label or _humanize(key)
    help_text = outer.get("description", "") if isinstance(outer.get("description"), str) else ""
    default = outer.get("default", _MISSING)
    resolved = deref(outer, root)
    nullable = False

    members = resolved.get("anyOf") or resolved.get("oneOf")
    if isinstance(members, list):
        options = [deref(m, root) for m in members]
        non_null = [m for m in options if not _is_null(m)]
        nullable = len(non_null) < len(options)
        if len(non_null) == 1:
            base = {k: v for k, v in resolved.items() if k not in ("anyOf", "oneOf")}
            resolved = {**non_null[0], **base}
        elif non_null and all(_enum_values(m) is not None for m in non_null):
            resolved = {"enum": [v for m in non_null for v in (_enum_values(m) or [])]}
        else:
            return Spec("json", label, help_text, nullable, required, default)

    kind_type = resolved.get("type")
    if isinstance(kind_type, list):
        nullable = nullable or "null" in kind_type
        concrete = [t for t in kind_type if t != "null"]
        kind_type = concrete[0] if len(concrete) == 1 else None
    if help_text == "" and isinstance(resolved.get("description"), str) and key:
        help_text = resolved["description"] if resolved.get("type") != "object" else ""
    spec = Spec("json", label, help_text, nullable, required, default)

    values = _enum_values(resolved)
    if values is not None:
        spec.kind, spec.choices = "enum", _choices(values)
    elif kind_type == "boolean":
        spec.kind = "tristate" if nullable else "boolean"
    elif kind_type == "integer":
        spec.kind, spec.attrs = "integer", _number_attrs(resolved, integer=True)
    elif kind_type == "number":
        spec.kind, spec.attrs = "number", _number_attrs(resolved, integer=False)
    elif kind_type == "string":
        fmt = resolved.get("format")
        if fmt == "date":
            spec.kind = "date"
        elif fmt == "date-time":
            spec.kind = "datetime"
        else:
            spec.kind = "textarea" if _wants_textarea(key, resolved, value) else "text"
            if isinstance(resolved.get("maxLength"), int):
                spec.attrs = {"maxlength": resolved["maxLength"]}
    elif kind_type == "object" or (kind_type is None and isinstance(resolved.get("properties"), Mapping)):
        properties = resolved.get("properties")
        if isinstance(properties, Mapping) and properties and depth < MAX_DEPTH:
            required_keys = set(resolved.get("required") or [])
            current = value if isinstance(value, Mapping) else {}
            spec.kind = "object"
            spec.properties = [
                (
                    name,
                    spec_for(
                        child, root, key=name, required=name in required_keys, value=current.get(name), depth=depth + 1
                    ),
                )
                for name, child in _in_declared_order(resolved, properties)
            ]
    elif kind_type == "array" and depth < MAX_DEPTH:
        sample = value[0] if isinstance(value, list) and value else None
        items = spec_for(resolved.get("items", {}), root, value=sample, depth=depth + 1)
        if items.kind == "object":
            spec.kind = "table" if all(p.kind in SCALAR_KINDS for _, p in items.properties) else "cards"
            spec.items = items
        elif items.kind in SCALAR_KINDS - {"boolean", "tristate", "textarea"}:
            spec.kind, spec.items = "lines", items
    return spec


def _infer_schema(value: Any) -> dict[str, Any]:
    """A JSON schema describing `value`, for items that were stored without one."""
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, Mapping):
        return {"type": "object", "properties": {k: _infer_schema(v) for k, v in value.items()}}
    if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
        keys: dict[str, Any] = {}
        for row in value:
            for k, v in row.items():
                if keys.get(k) in (None, {}):
                    keys[k] = _infer_schema(v)
        return {"type": "array", "items": {"type": "object", "properties": keys}}
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return {"type": "array", "items": {"type": "string"}}
    if isinstance(value, list) and value and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
        return {"type": "array", "items": {"type": "number"}}
    return {}


def root_spec(schema: Mapping[str, Any] | None, value: Any) -> Spec:
    """The Spec of a whole output: from its schema, or inferred from the value when it has none.

    Top-level keys of the value that the schema does not name are kept as JSON fields, so an edit never
    silently drops them.
    """
    root = schema if isinstance(schema, Mapping) and schema else _infer_schema(value)
    spec = spec_for(root, root, value=value)
    if spec.kind == "object" and isinstance(value, Mapping):
        named = {name for name, _ in spec.properties}
        for name in value:
            if name not in named:
                spec.properties.append((name, spec_for(_infer_schema(value[name]), {}, key=name, value=value[name])))
    return spec


# ---------------------------------------------------------------- value ↔ input strings


def _format_number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def input_value(spec: Spec, value: Any) -> str:
    """The string an input shows for `value` (a JSON value, or a Raw string sent back with errors)."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return ""
    if spec.kind == "json":
        return json.dumps(value, indent=2, ensure_ascii=False)
    if spec.kind == "enum":
        return _choice_key(value)
    if spec.kind == "tristate":
        return "true" if value is True else "false" if value is False else str(value)
    if spec.kind == "lines" and isinstance(value, list):
        assert spec.items is not None
        return "\n".join(input_value(spec.items, v) for v in value)
    if spec.kind in NUMERIC_KINDS:
        return _format_number(value)
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def is_money(key: str) -> bool:
    """Whether a number under `key` is an amount of money (see MONEY_NAMES)."""
    key = key.lower()
    return any(key == name or key.endswith("_" + name) for name in MONEY_NAMES)


def money(value: float, currency: str = "") -> str:
    """An amount as people read one: "2,805.50 EUR"."""
    return f"{value:,.2f} {currency}" if currency else f"{value:,.2f}"


def display_value(spec: Spec, value: Any, *, currency: str | None = None) -> str:
    """`value` formatted for reading; empty when there is nothing to show. `currency`, given for an amount of
    money ("" when no currency is known), shows it with two decimals and that currency."""
    if value is None or isinstance(value, Raw):
        return str(value or "")
    numeric = isinstance(value, int | float) and not isinstance(value, bool)
    if currency is not None and numeric and (not isinstance(value, float) or math.isfinite(value)):
        return money(value, currency)
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if spec.kind == "enum":
        return next((label for key, _, label in spec.choices if key == _choice_key(value)), str(value))
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            value = int(value)
        return f"{value:,}"
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


# ---------------------------------------------------------------- the form tree


@dataclass
class FormRow:
    """One entry of a list of objects."""

    index: str
    # The entry as an object field: its children are the row's inputs.
    node: FormField
    # The blank row offered for adding an entry; dropped on submit if left blank.
    extra: bool = False

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def fields(self) -> list[FormField]:
        return self.node.children

    @property
    def errors(self) -> list[str]:
        return self.node.errors

    @property
    def number(self) -> int:
        return int(self.index) + 1 if self.index.isdigit() else 0

    @property
    def has_errors(self) -> bool:
        return self.node.has_errors


@dataclass
class FormField:
    spec: Spec
    path: tuple[str, ...]
    value: Any = None
    errors: list[str] = field(default_factory=list)
    children: list[FormField] = field(default_factory=list)
    rows: list[FormRow] = field(default_factory=list)
    template_row: FormRow | None = None
    # Stands for a row index in `template_row`, replaced by the next free index when a row is added.
    token: str = ""
    # What the output type's checks say about this field (`annotate`), and the source lines it was read from.
    findings: list[dict[str, Any]] = field(default_factory=list)
    source_lines: list[int] = field(default_factory=list)
    # For an amount of money: the currency it is in ("" when none is known); None for anything else.
    currency: str | None = None

    kind = property(lambda self: self.spec.kind)
    label = property(lambda self: self.spec.label)
    help = property(lambda self: self.spec.help)
    required = property(lambda self: self.spec.required)
    nullable = property(lambda self: self.spec.nullable)
    attrs = property(lambda self: self.spec.attrs)

    @property
    def name(self) -> str:
        return ".".join((PREFIX, *self.path))

    @property
    def id(self) -> str:
        return "sf-" + re.sub(r"[^A-Za-z0-9_-]", "-", "-".join(self.path) or "output")

    @property
    def input_value(self) -> str:
        return input_value(self.spec, self.value)

    @property
    def display(self) -> str:
        return display_value(self.spec, self.value, currency=self.currency)

    @property
    def text_rows(self) -> int:
        """Rows for the editor of a long text: enough for its text (wrapped lines counted), within TEXT_ROWS."""
        lines = self.input_value.split("\n")
        wanted = sum(max(1, math.ceil(len(line) / TEXT_ROW_CHARS)) for line in lines) + 1
        return max(TEXT_ROWS[0], min(TEXT_ROWS[1], wanted))

    @property
    def display_items(self) -> list[str]:
        """The entries of a list of scalars, each formatted for reading."""
        if not isinstance(self.value, list) or self.spec.items is None:
            return []
        return [display_value(self.spec.items, v) for v in self.value]

    @property
    def checked(self) -> bool:
        return self.value is True or (isinstance(self.value, Raw) and self.value in ("on", "true", "1"))

    @property
    def options(self) -> list[tuple[str, str, bool]]:
        """(key, label, selected) for a select, with an empty choice where "no value" is allowed."""
        current = self.input_value
        choices = TRISTATE_CHOICES if self.spec.kind == "tristate" else self.spec.choices
        options = [(key, label, key == current) for key, _, label in choices]
        if self.spec.nullable or self.spec.kind == "tristate" or not any(selected for *_, selected in options):
            options.insert(0, ("", "—", current == ""))
        return options

    @property
    def bounds(self) -> str:
        """The allowed range of a number, as a hint."""
        low, high = self.spec.attrs.get("min"), self.spec.attrs.get("max")
        if low is not None and high is not None:
            return f"Between {_format_number(low)} and {_format_number(high)}"
        if low is not None:
            return f"At least {_format_number(low)}"
        if high is not None:
            return f"At most {_format_number(high)}"
        return ""

    @property
    def multiline(self) -> bool:
        """Needs a textarea even in a table cell: a text input would drop its line breaks."""
        return self.spec.kind in ("textarea", "json", "lines") and "\n" in self.input_value

    @property
    def is_numeric(self) -> bool:
        return self.spec.kind in NUMERIC_KINDS

    @property
    def is_empty(self) -> bool:
        return self.value in (None, "", [], {})

    @property
    def columns(self) -> list[Spec]:
        """Column headings of a table: the specs of the row object's properties."""
        return [spec for _, spec in self.spec.items.properties] if self.spec.items else []

    @property
    def has_errors(self) -> bool:
        return bool(self.errors) or any(c.has_errors for c in self.children) or any(r.has_errors for r in self.rows)

    @property
    def not_found(self) -> bool:
        """A value the model did not find: one its checks report missing (whatever default stands in for it),
        or a scalar field left without a value. Read as "not found", never as a value or a blank."""
        if any(item.get("check") == MISSING for item in self.findings):
            return True
        return self.spec.kind in SCALAR_KINDS and self.value in (None, "")

    @property
    def finding_level(self) -> str:
        """The most severe of the field's findings ("error", "warning", "info"), or ""."""
        levels = {item.get("severity") for item in self.findings}
        return next((level for level in SEVERITIES if level in levels), "")

    @property
    def source_lines_attr(self) -> str:
        return " ".join(str(n) for n in self.source_lines)


def _blank_value(spec: Spec) -> Any:
    """What a new row's input starts with: the schema's default, else nothing."""
    if spec.default is not _MISSING:
        return spec.default
    if spec.kind == "boolean":
        return False
    return None


def _build(spec: Spec, path: tuple[str, ...], value: Any, *, blank: bool, extra_rows: int) -> FormField:
    node = FormField(spec=spec, path=path, value=_blank_value(spec) if blank else value)
    if spec.kind == "object":
        current = value if isinstance(value, Mapping) and not blank else {}
        node.children = [
            _build(child, (*path, name), current.get(name), blank=blank, extra_rows=extra_rows)
            for name, child in spec.properties
        ]
        node.value = None if blank else value
    elif spec.kind in ("table", "cards"):
        assert spec.items is not None
        rows = value if isinstance(value, list) and not blank else []
        node.rows = [_row(spec.items, path, str(i), row, extra_rows=extra_rows) for i, row in enumerate(rows)]
        node.rows += [
            _row(spec.items, path, str(len(rows) + n), None, extra=True, extra_rows=extra_rows)
            for n in range(extra_rows)
        ]
        node.token = f"__n{len(path)}__"
        node.template_row = _row(spec.items, path, node.token, None, extra=True, extra_rows=0)
    return node


def _row(item: Spec, path: tuple[str, ...], index: str, value: Any, *, extra: bool = False, extra_rows: int) -> FormRow:
    node = _build(item, (*path, index), value, blank=extra, extra_rows=extra_rows)
    return FormRow(index=index, node=node, extra=extra)


def walk(node: FormField) -> list[tuple[tuple[str, ...], FormField]]:
    found: list[tuple[tuple[str, ...], FormField]] = [(node.path, node)]
    for child in node.children:
        found += walk(child)
    for row in node.rows:
        found += walk(row.node)
    return found


def _attach(tree: FormField, errors: list[dict[str, Any]]) -> None:
    """Put each error on the field its `loc` names, or on the nearest enclosing field or row."""
    targets = dict(walk(tree))
    for error in errors:
        loc = tuple(str(part) for part in error.get("loc") or ())
        while loc and loc not in targets:
            loc = loc[:-1]
        targets.get(loc, tree).errors.append(str(error.get("msg", "Invalid value")))


def annotate(tree: FormField, findings: list[dict[str, Any]], source_spans: Mapping[str, Any] | None) -> FormField:
    """Put each finding on the field its `field` path names (or the nearest enclosing one; whole-output
    findings stay on the root), and give each field the source lines of its path or of its nearest
    enclosing path that has some (a line item's cells share the item's line)."""
    targets = dict(walk(tree))
    for item in findings:
        path = tuple(part for part in str(item.get("field") or "").split(".") if part)
        while path and path not in targets:
            path = path[:-1]
        targets.get(path, tree).findings.append(item)
    lines = (source_spans or {}).get("lines") or {}
    if isinstance(lines, Mapping):
        for path, node in targets.items():
            for depth in range(len(path), 0, -1):
                numbers = lines.get(".".join(path[:depth]))
                if isinstance(numbers, list) and numbers:
                    node.source_lines = [n for n in numbers if isinstance(n, int)]
                    break
    return tree


def build_form(
    schema: Mapping[str, Any] | None,
    value: Any,
    *,
    errors: list[dict[str, Any]] | None = None,
    original: Any = None,
    extra_rows: int = 1,
) -> FormField:
    """The field tree of an output, with `errors` placed by their `loc`.

    `value` is the output itself, or the `raw` of a failed `parse_form`; `original` (the item's stored
    output) decides the fields when the item has no schema. Lists of objects end with `extra_rows` blank
    rows for adding entries without JavaScript.
    """
    spec = root_spec(schema, original if original is not None else value)
    tree = _build(spec, (), value, blank=False, extra_rows=extra_rows)
    _attach(tree, errors or [])
    _mark_money(tree, "")
    return tree


def currency_of(value: Any) -> str:
    """The currency an object names (its "currency" field), or ""."""
    named = value.get(CURRENCY_KEY) if isinstance(value, Mapping) else None
    return named.strip() if isinstance(named, str) else ""


def _mark_money(node: FormField, currency: str) -> None:
    """Give each amount of money under `node` the currency of its nearest object that names one."""
    currency = currency_of(node.value) or currency
    if node.spec.kind in NUMERIC_KINDS and node.path and is_money(node.path[-1]):
        node.currency = currency
    for child in node.children:
        _mark_money(child, currency)
    for row in node.rows:
        _mark_money(row.node, currency)


# ---------------------------------------------------------------- POST → JSON


@dataclass
class ParseResult:
    value: Any
    # What to show again if the edit is refused: coerced values where they worked, Raw strings elsewhere.
    raw: Any
    errors: list[dict[str, Any]]


class _Invalid(Exception):
    pass


def _whole_number(digits: str) -> int:
    try:
        return int(digits)
    except ValueError:
        # Python refuses to convert more than 4,300 digits (sys.int_info.str_digits_check_threshold).
        raise _Invalid("Enter a whole number of at most 4,300 digits.") from None


def _coerce(spec: Spec, text: str) -> Any:
    """One input string → its JSON value; raises _Invalid with the message for the reviewer."""
    kind = spec.kind
    stripped = text.strip()
    if kind in ("text", "textarea"):
        text = text.replace("\r\n", "\n")
        return None if text == "" and spec.nullable else text
    if kind == "boolean":
        return stripped in ("on", "true", "1")
    if stripped == "":
        if spec.nullable or kind == "tristate" or kind == "json":
            return None
        raise _Invalid("Choose an option." if kind == "enum" else "This field is required.")
    if kind == "tristate":
        if stripped not in ("true", "false"):
            raise _Invalid("Choose yes, no or nothing.")
        return stripped == "true"
    if kind == "enum":
        for key, member, _ in spec.choices:
            if key == text:
                return member
        raise _Invalid("Select one of the options.")
    if kind == "integer":
        if not _INTEGER.match(stripped):
            raise _Invalid("Enter a whole number.")
        return _whole_number(stripped)
    if kind == "number":
        if _INTEGER.match(stripped):
            return _whole_number(stripped)
        try:
            number = float(stripped)
        except ValueError:
            raise _Invalid("Enter a number.") from None
        if not math.isfinite(number):
            raise _Invalid("Enter a number.")
        return number
    if kind == "date":
        try:
            if not _DATE.match(stripped):
                raise ValueError(stripped)
            return datetime.date.fromisoformat(stripped).isoformat()
        except ValueError:
            raise _Invalid("Enter a date as YYYY-MM-DD.") from None
    if kind == "datetime":
        try:
            datetime.datetime.fromisoformat(stripped)
        except ValueError:
            raise _Invalid("Enter a date and time as YYYY-MM-DDTHH:MM[:SS][±HH:MM].") from None
        return stripped
    try:
        return json_loads(text)
    except json.JSONDecodeError as error:
        raise _Invalid(f"Enter valid JSON ({error.msg}, line {error.lineno}).") from None
    except UnsafeInputError as error:
        raise _Invalid(f"{error}.") from None


def _row_indices(data: Mapping[str, Any], name: str) -> list[int]:
    start, end = f"{name}.", f".{ROW_MARK}"
    indices = set()
    for key in data:
        if key.startswith(start) and key.endswith(end):
            middle = key[len(start) : -len(end)]
            if middle.isdigit():
                indices.add(int(middle))
    return sorted(indices)


def _get(data: Mapping[str, Any], name: str) -> str | None:
    value = data.get(name)
    if isinstance(value, list):
        value = value[-1] if value else None
    return value if value is None else str(value)


def _is_blank(spec: Spec, raw: Any) -> bool:
    """True when a new row was left as offered: every input empty or at its default."""
    if spec.kind == "object":
        return all(
            _is_blank(child, raw.get(name) if isinstance(raw, Mapping) else None) for name, child in spec.properties
        )
    if spec.kind in ("table", "cards"):
        return not raw
    default = _blank_value(spec)
    if spec.kind == "boolean":
        return raw == bool(default)
    text = str(raw or "")
    return text.strip() == "" or text == input_value(spec, default)


def _parse(
    spec: Spec, data: Mapping[str, Any], name: str, loc: tuple[Any, ...], errors: list[dict[str, Any]]
) -> tuple[Any, Any]:
    if spec.kind == "object":
        value: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        for key, child in spec.properties:
            value[key], raw[key] = _parse(child, data, f"{name}.{key}", (*loc, key), errors)
        if spec.nullable and _is_blank(spec, raw):
            return None, None
        return value, raw
    if spec.kind in ("table", "cards"):
        assert spec.items is not None
        values: list[Any] = []
        raws: list[Any] = []
        for index in _row_indices(data, name):
            row_name = f"{name}.{index}"
            if _get(data, f"{row_name}.{ROW_DELETE}"):
                continue
            row_errors: list[dict[str, Any]] = []
            row_value, row_raw = _parse(spec.items, data, row_name, (*loc, len(values)), row_errors)
            if _get(data, f"{row_name}.{ROW_EXTRA}") and _is_blank(spec.items, row_raw):
                continue
            values.append(row_value)
            raws.append(row_raw)
            errors += row_errors
        return values, raws
    text = _get(data, name)
    if spec.kind == "lines":
        assert spec.items is not None
        entries = [line for line in (text or "").replace("\r\n", "\n").split("\n") if line.strip()]
        items = []
        for position, entry in enumerate(entries):
            try:
                items.append(_coerce(spec.items, entry.strip()))
            except _Invalid as error:
                errors.append({"loc": list(loc), "msg": f"Line {position + 1}: {error}"})
        return items, Raw(text or "")
    if spec.kind == "boolean":
        checked = _coerce(spec, text or "")
        return checked, checked
    try:
        return _coerce(spec, text or ""), Raw(text or "")
    except _Invalid as error:
        errors.append({"loc": list(loc), "msg": str(error)})
        return None, Raw(text or "")


def parse_form(schema: Mapping[str, Any] | None, data: Mapping[str, Any], *, original: Any = None) -> ParseResult:
    """The edited output from a POST (a QueryDict or a plain dict), with the inputs that could not be read."""
    spec = root_spec(schema, original)
    if hasattr(data, "lists"):
        data = {key: values for key, values in data.lists()}
    errors: list[dict[str, Any]] = []
    value, raw = _parse(spec, data, PREFIX, (), errors)
    return ParseResult(value=value, raw=raw, errors=errors)
