"""Browser forms for runs: the run-list filter and a flow's start form.

The start form is generated from the flow's pydantic input model. Django only
renders the widgets and collects the raw strings; the pydantic model is the one
validator, so the browser, the JSON API and the CLI accept exactly the same
inputs, and its errors are put back on the field they name. A text input that
declares an upload kind (see `uploads`) also gets a file field; the file's
text then stands in for the typed value, and the file itself is kept with the run
(`documents`, handed to `services.run_create`).
"""

from __future__ import annotations

import datetime
import decimal
import enum
import json
import types
import typing
from collections.abc import Sequence
from typing import Any, Literal

from annotated_types import Ge, Gt, Le, Lt, MaxLen
from django import forms
from django.core.exceptions import ImproperlyConfigured
from django.core.files.uploadedfile import UploadedFile
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined, to_jsonable_python

from reviewconsole.engine.models import RunStatus
from reviewconsole.engine.registry import FlowSpec
from reviewconsole.engine.uploads import UploadError, get_converter, read_upload, upload_kind
from reviewconsole.inputs import UnsafeInputError, check_value

# A str input whose name contains one of these is long text: a textarea.
TEXTAREA_NAME_HINTS = ("text", "raw", "body")
# The file field offered beside an input `name` is `name + UPLOAD_SUFFIX`.
UPLOAD_SUFFIX = "__upload"

Kind = Literal["text", "number", "bool", "choice", "date", "json"]


class RunFilterForm(forms.Form):
    """GET filters of the run list; an unknown value is ignored, not an error page."""

    flow = forms.ChoiceField(required=False, label="Flow")
    status = forms.ChoiceField(required=False, label="Status", choices=[("", "All statuses"), *RunStatus.choices])

    def __init__(self, *args: Any, flows: Sequence[FlowSpec], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["flow"].choices = [("", "All flows"), *((spec.name, spec.title) for spec in flows)]

    def filters(self) -> tuple[str, str]:
        """(flow_name, status) to filter by; empty strings mean no filter."""
        if not self.is_bound:
            return "", ""
        self.is_valid()
        return self.cleaned_data.get("flow", ""), self.cleaned_data.get("status", "")


def _unwrap_optional(annotation: Any) -> Any:
    """`X | None` → X, so an optional int is still a number input."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _is_subclass(annotation: Any, base: type) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, base)


def _wants_textarea(name: str, info: FieldInfo) -> bool:
    extra = info.json_schema_extra
    if isinstance(extra, dict) and extra.get("widget") == "textarea":
        return True
    return any(hint in name.lower() for hint in TEXTAREA_NAME_HINTS)


def _bounds(info: FieldInfo) -> dict[str, Any]:
    """HTML attributes mirroring the model's constraints; pydantic still enforces them."""
    attrs: dict[str, Any] = {}
    for constraint in info.metadata:
        if isinstance(constraint, Ge | Gt):
            attrs["min"] = constraint.ge if isinstance(constraint, Ge) else constraint.gt
        elif isinstance(constraint, Le | Lt):
            attrs["max"] = constraint.le if isinstance(constraint, Le) else constraint.lt
        elif isinstance(constraint, MaxLen):
            attrs["maxlength"] = constraint.max_length
    return attrs


def _initial(kind: Kind, default: Any) -> Any:
    if default is PydanticUndefined or default is None:
        return None
    if kind == "json":
        return json.dumps(to_jsonable_python(default), indent=2)
    if isinstance(default, enum.Enum):
        return str(default.value)
    if isinstance(default, datetime.datetime):
        return default.strftime("%Y-%m-%dT%H:%M")
    if isinstance(default, datetime.date):
        return default.isoformat()
    return default


def _choices(annotation: Any) -> dict[str, Any]:
    """Option text → model value for a Literal or an Enum; empty for any other type."""
    if typing.get_origin(annotation) is Literal:
        return {str(value): value for value in typing.get_args(annotation)}
    if _is_subclass(annotation, enum.Enum):
        return {str(member.value): member.value for member in annotation}
    return {}


def _widget(name: str, info: FieldInfo, annotation: Any, choices: dict[str, Any]) -> tuple[Kind, forms.Widget]:
    attrs: dict[str, Any] = {"required": True} if info.is_required() else {}
    attrs.update(_bounds(info))
    if choices:
        attrs.pop("maxlength", None)
        options = [(key, key) for key in choices]
        if not info.is_required() and info.get_default(call_default_factory=True) is None:
            options.insert(0, ("", "—"))
        return "choice", forms.Select(attrs=attrs, choices=options)
    if _is_subclass(annotation, bool):
        return "bool", forms.CheckboxInput()
    if _is_subclass(annotation, int):
        return "number", forms.NumberInput(attrs={"step": 1, **attrs})
    if _is_subclass(annotation, float | decimal.Decimal):
        return "number", forms.NumberInput(attrs={"step": "any", **attrs})
    if _is_subclass(annotation, datetime.datetime):
        return "date", forms.DateTimeInput(attrs={"type": "datetime-local", **attrs})
    if _is_subclass(annotation, datetime.date):
        return "date", forms.DateInput(attrs={"type": "date", **attrs})
    if _is_subclass(annotation, str):
        if _wants_textarea(name, info):
            return "text", forms.Textarea(attrs={"rows": 8, **attrs})
        return "text", forms.TextInput(attrs=attrs)
    # Lists, dicts and nested models are typed as JSON and validated by the model.
    return "json", forms.Textarea(attrs={"rows": 4, "class": "input--code", **attrs})


def _form_field(name: str, info: FieldInfo) -> tuple[forms.Field, Kind, dict[str, Any]]:
    """A Django field that renders and collects one model field, its kind, and its choice values."""
    annotation = _unwrap_optional(info.annotation)
    choices = _choices(annotation)
    kind, widget = _widget(name, info, annotation, choices)
    default = PydanticUndefined if info.is_required() else info.get_default(call_default_factory=True)
    common: dict[str, Any] = {
        "label": info.title or name.replace("_", " ").capitalize(),
        "required": False,  # pydantic decides; the widget still carries the HTML `required`
        "widget": widget,
        "help_text": info.description or "",
        "initial": _initial(kind, default),
    }
    if kind == "bool":
        return forms.BooleanField(**common), kind, choices
    # Long text keeps its leading and trailing whitespace; everything else is trimmed.
    strip = not isinstance(widget, forms.Textarea) or kind == "json"
    return forms.CharField(strip=strip, **common), kind, choices


class FlowInputForm(forms.Form):
    """The start form of one flow; `validated` holds the input model once `is_valid()`."""

    def __init__(self, input_model: type[BaseModel], *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.input_model = input_model
        self.validated: BaseModel | None = None
        self._kinds: dict[str, Kind] = {}
        self._choices: dict[str, dict[str, Any]] = {}
        self._required: set[str] = set()
        self._uploads: dict[str, str] = {}  # input name -> upload kind
        # Input name -> (the file its text was read from, its page count), once valid.
        self.documents: dict[str, tuple[UploadedFile, int | None]] = {}
        for name, info in input_model.model_fields.items():
            self.fields[name], self._kinds[name], self._choices[name] = _form_field(name, info)
            if info.is_required():
                self._required.add(name)
            kind = upload_kind(info)
            if kind is not None:
                self._add_upload(name, kind)

    def _add_upload(self, name: str, kind: str) -> None:
        """A file field right after the text field `name`, whose converted text replaces the typed value."""
        if self._kinds[name] != "text":
            raise ImproperlyConfigured(f"Input '{name}' declares an upload but is not text")
        try:
            converter = get_converter(kind)
        except LookupError as error:
            raise ImproperlyConfigured(f"Input '{name}': {error}") from None
        # The browser must let a file stand in for the text, so the text box is no longer required there.
        self.fields[name].widget.attrs.pop("required", None)
        self.fields[name + UPLOAD_SUFFIX] = forms.FileField(
            required=False,
            label=f"…or upload a {converter.label}",
            help_text=f"Its text is used as the {self.fields[name].label.lower()}.",
            widget=forms.FileInput(attrs={"accept": converter.accept}),
        )
        self._uploads[name] = kind

    def _uploaded_text(self, name: str, cleaned: dict[str, Any]) -> str | None:
        """The text of the file sent for `name`, or None when none was (errors go on the file field)."""
        upload = cleaned.get(name + UPLOAD_SUFFIX)
        if not upload:
            return None
        if str(cleaned.get(name) or "").strip():
            self.add_error(name + UPLOAD_SUFFIX, "Paste the text or upload a file, not both.")
            return None
        try:
            reading = read_upload(self._uploads[name], upload)
        except UploadError as error:
            self.add_error(name + UPLOAD_SUFFIX, str(error))
            return None
        self.documents[name] = (upload, reading.pages)
        return reading.text

    def _model_data(self, cleaned: dict[str, Any]) -> dict[str, Any]:
        """Raw form values → the dict handed to pydantic.

        An empty non-text value is left out, so pydantic applies the default
        or reports the field as required; an empty required text is left out
        for the same reason, while an optional text may really be empty.
        """
        data: dict[str, Any] = {}
        for name, kind in self._kinds.items():
            if name not in cleaned:
                continue
            value = cleaned[name]
            if name in self._uploads:
                value = self._uploaded_text(name, cleaned) or value
            if value in ("", None) and (kind != "text" or name in self._required):
                continue
            if kind == "text" and isinstance(value, str):
                # Browsers submit textarea line breaks as CRLF; flows expect "\n".
                value = value.replace("\r\n", "\n")
            elif kind == "choice":
                value = self._choices[name].get(value, value)
            elif kind == "json":
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as error:
                    self.add_error(name, f"Enter valid JSON ({error.msg}, line {error.lineno}).")
                    continue
            try:
                # Typed JSON may hold NaN or Infinity, and an uploaded file's text a NUL character.
                check_value(value)
            except UnsafeInputError as error:
                self.add_error(name, str(error))
                continue
            data[name] = value
        return data

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        data = self._model_data(cleaned)
        if self.errors:
            return cleaned
        try:
            self.validated = self.input_model.model_validate(data, by_alias=True, by_name=True)
        except ValidationError as error:
            for problem in error.errors(include_url=False):
                location = problem["loc"]
                if location and str(location[0]) in self.fields:
                    # A nested location (a list item, a sub-model key) is named in the message.
                    inner = ".".join(str(part) for part in location[1:])
                    self.add_error(str(location[0]), f"{inner}: {problem['msg']}" if inner else problem["msg"])
                else:
                    self.add_error(None, problem["msg"])
        return cleaned

    @property
    def inputs(self) -> dict[str, Any]:
        """The validated inputs as JSON, ready for `services.run_create`."""
        if self.validated is None:
            raise ValueError("inputs is only available after is_valid() returned True")
        return self.validated.model_dump(mode="json")
