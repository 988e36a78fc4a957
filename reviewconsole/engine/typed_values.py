"""A step's return value as JSON plus a type descriptor, and back again.

Replay hands a listener the value its trigger returned, so a checkpoint must
say how to rebuild that value, not only what it looked like: a `CrewOutput`
stored as JSON comes back as a dict, and the listener fails with
`AttributeError: 'dict' object has no attribute 'raw'`.

`encode` walks the value once and gives JSON data and a descriptor: None where
the data is already the value (strings, numbers, booleans, None and lists and
str-keyed dicts of these), otherwise a tree of nodes naming each node's kind
and, for classes, its importable path. `decode` walks data and descriptor back.

Checkpoints are data read from a database, so nothing here unpickles, and a
class named by a descriptor is only used after it is checked to be of the kind
the node says (a pydantic model, a dataclass, an enum, a named tuple); its
module must belong to a package this process has already loaded. A value that
cannot be rebuilt raises `ReplayError` naming the step and the type, so the
run fails at replay rather than later in a listener.

Pure: no Django and no CrewAI (CrewAI's results are pydantic models), so the
web process can import it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import enum
import functools
import importlib
import operator
import sys
import types
import typing
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PosixPath, PurePosixPath
from typing import Any

from pydantic import BaseModel, RootModel
from pydantic_core import to_jsonable_python

Descriptor = dict[str, Any] | None

_PLAIN = (str, int, float, bool, type(None))
_PLAIN_BASES = (str, int, float)

# Values JSON has no type for, by exact type (a subclass of datetime is not a datetime here): the node's kind,
# how to write the value as JSON, how to read it back.
_SCALARS: dict[type, tuple[str, Callable[[Any], Any], Callable[[Any], Any]]] = {
    datetime: ("datetime", datetime.isoformat, datetime.fromisoformat),
    date: ("date", date.isoformat, date.fromisoformat),
    time: ("time", time.isoformat, time.fromisoformat),
    timedelta: (
        "timedelta",
        lambda delta: [delta.days, delta.seconds, delta.microseconds],
        lambda parts: timedelta(days=parts[0], seconds=parts[1], microseconds=parts[2]),
    ),
    Decimal: ("decimal", str, Decimal),
    uuid.UUID: ("uuid", str, uuid.UUID),
    bytes: ("bytes", lambda raw: base64.b64encode(raw).decode("ascii"), base64.b64decode),
    PosixPath: ("path", str, PosixPath),
    PurePosixPath: ("pure_path", str, PurePosixPath),
}
_SCALAR_READERS = {kind: read for kind, _, read in _SCALARS.values()}
_COLLECTIONS: dict[type, str] = {list: "list", tuple: "tuple", set: "set", frozenset: "frozenset"}
_COLLECTION_TYPES: dict[str, type] = {kind: collection for collection, kind in _COLLECTIONS.items()}


class ReplayError(Exception):
    """A recorded step value cannot be rebuilt as the type the step returned."""


class _Unrebuildable(Exception):
    def __init__(self, type_name: str, reason: str) -> None:
        super().__init__(reason)
        self.type_name = type_name
        self.reason = reason
        self.where = ""


# --------------------------------------------------------------------------- encode


def encode(value: Any) -> tuple[Any, Descriptor]:
    """JSON data for `value`, and the descriptor `decode` needs to rebuild it (None: the data is the value).

    Never fails on a value it cannot describe: the step that returned it has
    completed; its node says why it cannot be rebuilt, and replay fails there.
    """
    if type(value) in _PLAIN:
        return value, None
    scalar = _SCALARS.get(type(value))
    if scalar is not None:
        kind, write, _ = scalar
        return write(value), {"type": kind}
    if type(value) is dict:
        return _encode_dict(value)
    collection = _COLLECTIONS.get(type(value))
    if collection is not None:
        data, items = _encode_items(value)
        return data, {"type": collection, **items} if collection != "list" or items else None
    if isinstance(value, BaseModel):
        return _encode_model(value)
    if isinstance(value, enum.Enum):
        data, described = encode(value.value)
        return data, _with({"type": "enum", "class": _class_path(type(value))}, value=described)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_fields(
            value, "dataclass", {field.name: getattr(value, field.name) for field in dataclasses.fields(value)}
        )
    if isinstance(value, tuple) and hasattr(type(value), "_fields"):
        data, items = _encode_items(value)
        return data, {"type": "namedtuple", "class": _class_path(type(value)), **items}
    plain = next((plain for plain in _PLAIN_BASES if isinstance(value, plain)), None)
    if plain is not None:
        # A str, int or float of a subclass (numpy's float64, say): its plain value, and the class to call on it.
        return plain(value), {"type": "subclass", "class": _class_path(type(value))}
    return to_jsonable_python(value, fallback=str), {
        "type": "opaque",
        "class": _class_path(type(value)),
        "reason": "it is not a pydantic model, dataclass, enum, named tuple, date, number, string or container",
    }


def _with(node: dict[str, Any], **parts: Any) -> dict[str, Any]:
    """`node` plus those of `parts` that say something."""
    return node | {name: part for name, part in parts.items() if part}


def _encode_dict(value: dict[Any, Any]) -> tuple[Any, Descriptor]:
    if all(type(key) is str for key in value):
        data, values = {}, {}
        for key, item in value.items():
            data[key], described = encode(item)
            if described is not None:
                values[key] = described
        return data, {"type": "dict", "values": values} if values else None
    # JSON keys are strings: other keys (ints, enums, tuples) go as [key, value] pairs.
    keys, key_items = _encode_items(value.keys())
    values, value_items = _encode_items(value.values())
    return [list(pair) for pair in zip(keys, values, strict=True)], _with(
        {"type": "pairs"}, keys=key_items, values=value_items
    )


def _encode_items(values: Any) -> tuple[list[Any], dict[str, Any]]:
    """Data of each item, and the items' descriptors: {} when all plain, {"each": d} when all alike."""
    data, described = [], []
    for item in values:
        item_data, item_described = encode(item)
        data.append(item_data)
        described.append(item_described)
    if not any(described):
        return data, {}
    if all(node == described[0] for node in described):
        return data, {"each": described[0]}
    return data, {"items": described}


def _encode_model(model: BaseModel) -> tuple[Any, Descriptor]:
    cls = type(model)
    values = {name: getattr(model, name) for name in cls.model_fields}
    values.update(model.__pydantic_extra__ or {})
    data, node = _encode_fields(model, "model", values)
    generic = cls.__pydantic_generic_metadata__
    if generic["origin"] is not None:
        node["class"] = _class_path(generic["origin"])
        # An argument we cannot name leaves the model to be rebuilt unparametrized, its values still typed.
        with contextlib.suppress(_Unrebuildable):
            node["args"] = [_type_ref(arg) for arg in generic["args"]]
    # Which fields were set, as pydantic tracks it (exclude_unset dumps depend on it).
    unset = [name for name in cls.model_fields if name not in model.model_fields_set]
    return data, _with(node, unset=unset)


def _encode_fields(value: Any, kind: str, values: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    data, fields = {}, {}
    for name, item in values.items():
        data[name], described = encode(item)
        if described is not None:
            fields[name] = described
    return data, _with({"type": kind, "class": _class_path(type(value))}, fields=fields)


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _type_ref(hint: Any) -> dict[str, Any]:
    """A generic model's type argument, as data: classes by path, and unions and generic aliases of those."""
    if hint is None or hint is type(None):
        return {"none": True}
    origin = typing.get_origin(hint)
    if origin is typing.Union or origin is types.UnionType:
        return {"union": [_type_ref(arg) for arg in typing.get_args(hint)], "pipe": origin is types.UnionType}
    if isinstance(hint, types.GenericAlias):
        return {"alias": _type_ref(origin), "args": [_type_ref(arg) for arg in typing.get_args(hint)]}
    if isinstance(hint, type):
        generic = getattr(hint, "__pydantic_generic_metadata__", None)
        if generic and generic["origin"] is not None:
            return {"alias": _type_ref(generic["origin"]), "args": [_type_ref(arg) for arg in generic["args"]]}
        return {"class": _class_path(hint)}
    raise _Unrebuildable(repr(hint), "a type argument that is not a class, union or generic alias")


# --------------------------------------------------------------------------- decode


def decode(data: Any, descriptor: Descriptor, *, step: str) -> Any:
    """The value `encode` was given, rebuilt from its data and descriptor.

    Raises ReplayError, naming `step` and the type, when it cannot be rebuilt.
    """
    try:
        return _decode(data, descriptor)
    except _Unrebuildable as error:
        where = f" (at {error.where})" if error.where else ""
        name = error.type_name.replace(":", ".")
        raise ReplayError(f"step '{step}' returned a <{name}>{where} that cannot be rebuilt: {error.reason}") from error
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        # Only a checkpoint written by something other than `encode` gets here.
        raise ReplayError(f"step '{step}': its recorded value does not fit its type record: {error!r}") from error


def _decode(data: Any, node: Descriptor) -> Any:
    if node is None:
        return data
    kind = node.get("type")
    decoder = _DECODERS.get(kind)
    if decoder is not None:
        return decoder(data, node)
    reader = _SCALAR_READERS.get(kind)
    if reader is None:
        raise _Unrebuildable(str(kind), "the checkpoint names a kind of value this version does not know")
    try:
        return reader(data)
    except (TypeError, ValueError, IndexError) as error:
        raise _Unrebuildable(kind, f"{data!r} is not a recorded {kind}: {error}") from error


def _inside(where: str, decode_part: Callable[[], Any]) -> Any:
    """Decode a part, prefixing its location to the error of a part that cannot be rebuilt."""
    try:
        return decode_part()
    except _Unrebuildable as error:
        error.where = where + error.where
        raise


def _decode_items(data: list[Any], node: dict[str, Any]) -> list[Any]:
    described = node.get("items") or [node.get("each")] * len(data)
    return [
        _inside(f"[{index}]", functools.partial(_decode, item, item_node))
        for index, (item, item_node) in enumerate(zip(data, described, strict=True))
    ]


def _decode_collection(data: list[Any], node: dict[str, Any]) -> Any:
    items = _decode_items(data, node)
    return items if node["type"] == "list" else _COLLECTION_TYPES[node["type"]](items)


def _decode_dict(data: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    values = node.get("values", {})
    return {key: _inside(f"[{key!r}]", functools.partial(_decode, item, values.get(key))) for key, item in data.items()}


def _decode_pairs(data: list[list[Any]], node: dict[str, Any]) -> dict[Any, Any]:
    keys = _decode_items([key for key, _ in data], node.get("keys") or {})
    values = _decode_items([value for _, value in data], node.get("values") or {})
    return dict(zip(keys, values, strict=True))


def _decode_fields(data: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    fields = node.get("fields", {})
    return {
        name: _inside(f".{name}", functools.partial(_decode, item, fields.get(name))) for name, item in data.items()
    }


def _decode_model(data: dict[str, Any], node: dict[str, Any]) -> BaseModel:
    cls = _resolve(node["class"], BaseModel, "a pydantic model")
    if "args" in node:
        args = tuple(_type_from_ref(ref) for ref in node["args"])
        cls = _rebuild(node["class"], lambda: cls[args if len(args) > 1 else args[0]])
    values = _decode_fields(data, node)
    if issubclass(cls, RootModel):
        model = _rebuild(node["class"], lambda: cls.model_validate(values["root"]))
    else:
        model = _rebuild(node["class"], lambda: cls.model_validate(values, by_name=True))
    if node.get("unset"):
        object.__setattr__(model, "__pydantic_fields_set__", model.model_fields_set - set(node["unset"]))
    return model


def _decode_dataclass(data: dict[str, Any], node: dict[str, Any]) -> Any:
    cls = _resolve(node["class"], object, "a dataclass")
    if not dataclasses.is_dataclass(cls):
        raise _Unrebuildable(node["class"], "the class named is not a dataclass")
    values = _decode_fields(data, node)
    fields = dataclasses.fields(cls)
    instance = _rebuild(
        node["class"], lambda: cls(**{field.name: values[field.name] for field in fields if field.init})
    )
    # Fields outside __init__ get the value they had, not the one __post_init__ would compute now.
    for field in fields:
        if not field.init and field.name in values:
            object.__setattr__(instance, field.name, values[field.name])
    return instance


def _decode_enum(data: Any, node: dict[str, Any]) -> enum.Enum:
    cls = _resolve(node["class"], enum.Enum, "an enum")
    value = _decode(data, node.get("value"))
    return _rebuild(node["class"], lambda: cls(value))


def _decode_namedtuple(data: list[Any], node: dict[str, Any]) -> tuple[Any, ...]:
    cls = _resolve(node["class"], tuple, "a named tuple")
    if not hasattr(cls, "_fields"):
        raise _Unrebuildable(node["class"], "the class named is not a named tuple")
    items = _decode_items(data, node)
    return _rebuild(node["class"], lambda: cls(*items))


def _decode_subclass(data: Any, node: dict[str, Any]) -> Any:
    cls = _resolve(node["class"], _PLAIN_BASES, "a subclass of str, int or float")
    return _rebuild(node["class"], lambda: cls(data))


def _decode_opaque(data: Any, node: dict[str, Any]) -> Any:
    raise _Unrebuildable(node.get("class", "object"), node.get("reason", "it was recorded as text"))


_DECODERS: dict[str, Callable[[Any, dict[str, Any]], Any]] = {
    **dict.fromkeys(_COLLECTION_TYPES, _decode_collection),
    "dict": _decode_dict,
    "pairs": _decode_pairs,
    "model": _decode_model,
    "dataclass": _decode_dataclass,
    "enum": _decode_enum,
    "namedtuple": _decode_namedtuple,
    "subclass": _decode_subclass,
    "opaque": _decode_opaque,
}


def _rebuild(class_path: str, build: Callable[[], Any]) -> Any:
    """Instantiate (or validate into) a checked class; its own refusal becomes the replay error."""
    try:
        return build()
    except Exception as error:
        raise _Unrebuildable(class_path, f"{type(error).__name__}: {error}") from error


def _resolve(class_path: str, kind: type | tuple[type, ...], kind_name: str) -> type:
    """The class `class_path` names, if it is a `kind`; never imports a package this process has not loaded."""
    module_name, _, qualname = class_path.partition(":")
    if "<locals>" in qualname:
        raise _Unrebuildable(class_path, "it is defined inside a function, so it cannot be imported by name")
    module = sys.modules.get(module_name)
    if module is None:
        # A flow module imports what its steps return, so that package is loaded; a submodule of it may not
        # be yet. Any other module a database row names is not imported.
        if module_name.partition(".")[0] not in sys.modules:
            raise _Unrebuildable(class_path, f"its module {module_name!r} is not part of a loaded package")
        try:
            module = importlib.import_module(module_name)
        except Exception as error:
            raise _Unrebuildable(class_path, f"importing {module_name!r} failed: {error}") from error
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise _Unrebuildable(class_path, f"{module_name!r} has no class {qualname!r}")
    if not (isinstance(found, type) and issubclass(found, kind)):
        raise _Unrebuildable(class_path, f"it names {found!r}, which is not {kind_name}")
    return found


def _type_from_ref(ref: dict[str, Any]) -> Any:
    if ref.get("none"):
        return type(None)
    if "union" in ref:
        members = [_type_from_ref(member) for member in ref["union"]]
        return functools.reduce(operator.or_, members) if ref["pipe"] else typing.Union[tuple(members)]  # noqa: UP007
    if "alias" in ref:
        origin = _type_from_ref(ref["alias"])
        args = tuple(_type_from_ref(arg) for arg in ref["args"])
        return origin[args if len(args) > 1 else args[0]]
    return _resolve(ref["class"], object, "a class")
