"""The step-value codec as pure functions: encode → JSON → decode gives back the value, types and all."""

import dataclasses
import enum
import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import PurePosixPath
from typing import Any, Generic, NamedTuple, Optional, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field, RootModel

from reviewconsole.engine.typed_values import ReplayError, decode, encode
from tests.typed_flows import SAMPLES, UNREBUILDABLE, shape


class Mood(enum.Enum):
    HAPPY = "happy"
    SAD = "sad"


class Level(enum.IntFlag):
    READ = 1
    WRITE = 2


class Point(NamedTuple):
    x: int
    y: Any


class Sku(str):
    """A str of a subclass, as numpy's float64 is a float of one."""


class Cents(int):
    pass


class Leaf(BaseModel):
    name: str
    when: date | None = None


T = TypeVar("T")


class Box(BaseModel, Generic[T]):
    content: T
    history: list[T] = []


class Aliased(BaseModel):
    model_config = ConfigDict(frozen=True)

    number: str = Field(alias="Number")
    extra_note: str = Field(default="", alias="extraNote")


class Loose(BaseModel):
    model_config = ConfigDict(extra="allow")

    kind: str


class Scores(RootModel[dict[str, Decimal]]):
    pass


class Holder(BaseModel):
    anything: Any = None
    base: BaseModel | None = None


@dataclasses.dataclass(frozen=True)
class Span:
    start: datetime
    length: timedelta
    label: str = "span"
    derived: str = dataclasses.field(init=False, default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "derived", f"{self.label}@{self.start.isoformat()}")


def round_trip(value: Any) -> Any:
    """Through the database's eyes: the data and descriptor as JSON text and back."""
    data, descriptor = encode(value)
    return decode(json.loads(json.dumps(data)), json.loads(json.dumps(descriptor)), step="step")


def assert_same(value: Any) -> None:
    back = round_trip(value)
    assert back == value
    assert shape(back) == shape(value)


# --- generated values ----------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
    st.dates(),
    st.datetimes(timezones=st.sampled_from([None, UTC, timezone(timedelta(hours=-5, minutes=-30))])),
    st.times(),
    st.timedeltas(),
    st.decimals(allow_nan=False, allow_infinity=False),
    st.uuids(),
    st.binary(max_size=8),
    st.sampled_from(list(Mood)),
    st.sampled_from([Level.READ, Level.WRITE, Level.READ | Level.WRITE]),
    st.builds(Leaf, name=st.text(max_size=5), when=st.none() | st.dates()),
    st.builds(PurePosixPath, st.text(alphabet="abc/", max_size=6)),
    st.builds(Sku, st.text(max_size=4)),
    st.builds(Cents, st.integers()),
)
hashables = st.one_of(st.integers(), st.text(max_size=4), st.dates(), st.uuids(), st.sampled_from(list(Mood)))


def nested(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.dictionaries(st.text(max_size=4), children, max_size=4),
        st.dictionaries(hashables, children, max_size=4),
        st.builds(Point, x=st.integers(), y=children),
        st.builds(Box, content=children, history=st.lists(children, max_size=2)),
        st.builds(Box[Leaf], content=st.builds(Leaf, name=st.text(max_size=3))),
        st.builds(Holder, anything=children, base=st.none() | st.builds(Leaf, name=st.text(max_size=3))),
        st.builds(Span, start=st.datetimes(), length=st.timedeltas(), label=st.text(max_size=4)),
    )


values = st.recursive(scalars, nested, max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(values)
def test_any_supported_value_comes_back_equal_and_of_the_same_types(value):
    assert_same(value)


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    )
)
def test_plain_json_needs_no_descriptor_and_is_stored_as_it_is(value):
    assert encode(value) == (value, None)


# --- chosen cases ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [kind for kind in SAMPLES if kind not in UNREBUILDABLE])
def test_every_kind_the_replay_tests_use_round_trips(kind):
    assert_same(SAMPLES[kind]())


@pytest.mark.parametrize(
    "value",
    [
        Box[int | None](content=None),
        Box[Optional[int]](content=1),  # noqa: UP045 (a different class from Box[int | None])
        Box[list[Leaf]](content=[Leaf(name="a")]),
        Box[dict[str, Leaf]](content={"a": Leaf(name="a")}),
        Box[Box[Leaf]](content=Box[Leaf](content=Leaf(name="inner"))),
    ],
    ids=["pipe-union", "optional", "list", "dict", "nested-generic"],
)
def test_a_generic_model_comes_back_as_the_same_parametrized_class(value):
    back = round_trip(value)
    assert type(back) is type(value)
    assert back == value


def test_aliases_extras_and_root_models_round_trip():
    for value in (
        Aliased(Number="7", extraNote="n"),
        Loose(kind="k", surprise=Leaf(name="x"), when=date(2026, 1, 2)),
        Scores({"a": Decimal("1.5")}),
    ):
        assert_same(value)
    loose = round_trip(Loose(kind="k", surprise=Leaf(name="x")))
    assert isinstance(loose.surprise, Leaf)


def test_which_fields_were_set_survives():
    leaf = Leaf(name="only the name")
    back = round_trip(leaf)
    assert back.model_fields_set == {"name"}
    assert back.model_dump(exclude_unset=True) == {"name": "only the name"}


def test_a_dataclass_keeps_the_fields_its_init_does_not_take():
    span = Span(start=datetime(2026, 1, 1), length=timedelta(hours=1))
    object.__setattr__(span, "derived", "set later by the step")
    assert round_trip(span).derived == "set later by the step"


def test_a_subclass_in_a_field_typed_as_its_base_comes_back_as_the_subclass():
    holder = round_trip(Holder(base=Leaf(name="leaf"), anything=Mood.SAD))
    assert type(holder.base) is Leaf
    assert holder.anything is Mood.SAD


# --- what cannot be rebuilt --------------------------------------------------------------------------------


def test_a_class_defined_in_a_function_fails_at_decode_naming_step_and_type():
    class Local(BaseModel):
        value: int = 1

    data, descriptor = encode({"result": [Local()]})
    with pytest.raises(ReplayError) as error:
        decode(data, descriptor, step="draft")
    assert str(error.value) == (
        f"step 'draft' returned a <{__name__}.{Local.__qualname__}> (at ['result'][0]) that cannot be rebuilt: "
        "it is defined inside a function, so it cannot be imported by name"
    )


def test_an_arbitrary_object_is_recorded_as_text_and_fails_at_decode():
    data, descriptor = encode(object())
    assert data.startswith("<object object at")
    with pytest.raises(ReplayError, match=r"^step 's' returned a <builtins\.object> that cannot be rebuilt: it is not"):
        decode(data, descriptor, step="s")


def test_a_class_that_is_not_of_the_kind_recorded_is_never_instantiated():
    # A tampered row naming a callable that is not a model: it is refused before anything is called.
    descriptor = {"type": "model", "class": "subprocess:Popen", "fields": {}}
    with pytest.raises(ReplayError, match=r"<subprocess\.Popen> that cannot be rebuilt: it names .* not a pydantic"):
        decode({"args": ["true"]}, descriptor, step="s")
    for kind in ("dataclass", "enum", "namedtuple", "subclass"):
        with pytest.raises(ReplayError, match="is not a"):
            decode([], {"type": kind, "class": "os:system"}, step="s")


def test_a_module_outside_the_loaded_packages_is_not_imported():
    assert "this" not in sys.modules
    with pytest.raises(ReplayError, match="its module 'this' is not part of a loaded package"):
        decode({}, {"type": "model", "class": "this:Zen", "fields": {}}, step="s")
    assert "this" not in sys.modules


def test_a_submodule_of_a_loaded_package_is_imported_then_checked():
    # A step may return a class from a module its flow module imports only inside the step.
    assert "json.tool" not in sys.modules
    with pytest.raises(ReplayError, match=r"<json\.tool\.main> that cannot be rebuilt: it names <function main"):
        decode({}, {"type": "model", "class": "json.tool:main"}, step="s")
    assert "json.tool" in sys.modules


@pytest.mark.parametrize(
    ("data", "descriptor", "message"),
    [
        (
            "not a date",
            {"type": "date"},
            "returned a <date> that cannot be rebuilt: 'not a date' is not a recorded date",
        ),
        (1, {"type": "zebra"}, "a kind of value this version does not know"),
        ("x", {"type": "model", "class": "tests.test_typed_values:Leaf"}, "does not fit its type record"),
    ],
)
def test_a_malformed_record_is_a_replay_error(data, descriptor, message):
    with pytest.raises(ReplayError, match=message):
        decode(data, descriptor, step="s")


def test_the_codec_does_not_import_crewai():
    # The web process reads checkpoints without CrewAI (it takes seconds to import).
    code = "import sys, reviewconsole.engine.typed_values; sys.exit('crewai' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
