"""Flows that pass typed values between steps, for replay tests; registered through tests/engine_flows.py.

`typed_handoff` returns one sample value of a chosen kind from its start step and
its listener reports what it received, so a test can compare a first run with
one that replayed the start step after a crash or a Retry.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import typing
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import Any, Generic, TypeVar

from crewai.crews.crew_output import CrewOutput
from crewai.flow.flow import Flow, and_, listen, or_, router, start
from crewai.flow.human_feedback import HumanFeedbackResult, human_feedback
from crewai.flow.persistence import persist
from crewai.tasks.output_format import OutputFormat
from crewai.tasks.task_output import TaskOutput
from crewai.types.usage_metrics import UsageMetrics
from pydantic import BaseModel, PositiveInt

from reviewconsole.engine.registry import register_flow
from reviewconsole.reviews.provider import ReviewConsoleProvider
from tests.engine_flows import Draft, EmptyInputs, ReviewInputs, maybe_block, maybe_fail, side_effect


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Priority(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Line(BaseModel):
    sku: str
    quantity: int
    price: Decimal


class Invoice(BaseModel):
    number: str
    issued: date
    due: datetime
    lines: list[Line]
    color: Color
    tags: set[str]
    ref: uuid.UUID
    note: str = ""


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int


@dataclasses.dataclass
class Shipment:
    id: uuid.UUID
    sent_at: datetime
    window: tuple[time, time]
    priority: Priority
    weight: Decimal
    parcels: list[Line]


class Strict(BaseModel):
    count: PositiveInt


REF = uuid.UUID("5f0c6a8e-2f7b-4d2a-9a59-0b8f3c1d2e4f")
LINE = Line(sku="A-1", quantity=2, price=Decimal("9.95"))


def invoice() -> Invoice:
    return Invoice(
        number="INV-7",
        issued=date(2026, 12, 1),
        due=datetime(2026, 12, 31, 17, 30, tzinfo=UTC),
        lines=[LINE, Line(sku="B-2", quantity=1, price=Decimal("100.00"))],
        color=Color.BLUE,
        tags={"urgent", "eu"},
        ref=REF,
    )


def shipment() -> Shipment:
    return Shipment(
        id=REF,
        sent_at=datetime(2026, 12, 2, 8, 0, 0, 123456),
        window=(time(9, 0), time(17, 30)),
        priority=Priority.HIGH,
        weight=Decimal("12.500"),
        parcels=[LINE],
    )


def task_output() -> TaskOutput:
    return TaskOutput(
        description="Extract the invoice",
        name="extract",
        raw='{"sku": "A-1"}',
        pydantic=LINE,
        json_dict={"sku": "A-1", "quantity": 2},
        agent="Extractor",
        output_format=OutputFormat.PYDANTIC,
    )


def crew_output() -> CrewOutput:
    return CrewOutput(
        raw="INV-7 checked",
        pydantic=invoice(),
        json_dict={"number": "INV-7", "total": 119.9},
        tasks_output=[task_output()],
        token_usage=UsageMetrics(total_tokens=42, prompt_tokens=30, completion_tokens=12, successful_requests=1),
    )


def local_model() -> BaseModel:
    class Local(BaseModel):
        value: int = 1

    return Local()


class Opaque:
    """Neither a model, a dataclass nor an enum: nothing says how to rebuild it."""


# What `produce` returns, by kind. The last three cannot be rebuilt.
SAMPLES: dict[str, Callable[[], Any]] = {
    "model": invoice,
    "generic_model": lambda: Page[Line](items=[LINE], total=1),
    "crew_output": crew_output,
    "task_output": task_output,
    "dataclass": shipment,
    "enum": lambda: Color.RED,
    "int_enum": lambda: Priority.LOW,
    "date": lambda: date(2026, 12, 7),
    "datetime": lambda: datetime(2026, 12, 7, 15, 4, 5, 6789, tzinfo=UTC),
    "time": lambda: time(23, 59, 58, 1),
    "decimal": lambda: Decimal("0.10"),
    "uuid": lambda: REF,
    "tuple": lambda: (1, "one", Color.RED),
    "set": lambda: {1, 2, 3},
    "frozenset": lambda: frozenset({"a", "b"}),
    "containers": lambda: {
        "lines": [LINE, LINE],
        "by_day": {date(2026, 12, 1): [invoice()], date(2026, 12, 2): []},
        "pair": (shipment(), Page[Invoice](items=[invoice()], total=1)),
        "plain": [1, "two", None, {"three": 3.0}],
    },
    "local_model": local_model,
    "opaque_object": Opaque,
    "invalid_model": lambda: Strict.model_construct(count=-1),
}
UNREBUILDABLE = ("local_model", "opaque_object", "invalid_model")


def class_path(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def shape(value: Any) -> str:
    """The value's types all the way down, as text: equal values of other types (a list for a tuple) differ."""
    name = type(value).__qualname__
    if isinstance(value, BaseModel):
        fields = [f"{field}={shape(getattr(value, field))}" for field in type(value).model_fields]
        return f"{name}({', '.join(fields)})"
    if dataclasses.is_dataclass(value):
        fields = [f"{field.name}={shape(getattr(value, field.name))}" for field in dataclasses.fields(value)]
        return f"{name}({', '.join(fields)})"
    if isinstance(value, dict):
        # Sorted: PostgreSQL's jsonb keeps a dict's keys in an order of its own, as it does for all JSON.
        return f"{name}{{{', '.join(sorted(f'{shape(key)}: {shape(item)}' for key, item in value.items()))}}}"
    if isinstance(value, (set, frozenset)):
        return f"{name}[{', '.join(sorted(shape(item) for item in value))}]"
    if isinstance(value, (list, tuple)):
        return f"{name}[{', '.join(shape(item) for item in value)}]"
    return name


def report(value: Any, kind: str, first_output: Any) -> dict[str, Any]:
    """What a listener received, against what its trigger returns when it runs."""
    expected = SAMPLES[kind]()
    same = value == expected if kind not in UNREBUILDABLE else True
    return {
        "received": class_path(value),
        "same": bool(same) and shape(value) == shape(expected),
        "first_output": class_path(first_output),
    }


Kind = typing.Literal[tuple(SAMPLES)]  # type: ignore[valid-type]


class TypedInputs(BaseModel):
    kind: Kind = "model"


class TypedState(BaseModel):
    id: str = ""
    kind: str = "model"


@register_flow(name="typed_handoff", title="Typed hand-off (test)", inputs=TypedInputs)
@persist()
class TypedHandoffFlow(Flow[TypedState]):
    """produce returns a typed value; consume reports the type it received."""

    @start()
    def produce(self) -> Any:
        side_effect("produce")
        return SAMPLES[self.state.kind]()

    @listen(produce)
    def consume(self, value: Any) -> dict[str, Any]:
        side_effect("consume")
        maybe_block("consume")
        maybe_fail("consume")
        return report(value, self.state.kind, self.method_outputs[0])


class AsyncState(BaseModel):
    id: str = ""
    amount: float = 500.0
    route: str = ""


class AsyncInputs(BaseModel):
    amount: float = 500.0


@register_flow(name="async_routing", title="Async routing (test)", inputs=AsyncInputs)
@persist()
class AsyncRoutingFlow(Flow[AsyncState]):
    """Async start, async router and async listener, as CrewAI's docs write them."""

    @start()
    async def fetch(self) -> Line:
        side_effect("fetch")
        await asyncio.sleep(0)
        return Line(sku="A-1", quantity=1, price=Decimal(str(self.state.amount)))

    @router(fetch, emit=["large", "small"])
    async def size(self, line: Line) -> str:
        side_effect("size")
        await asyncio.sleep(0)
        return "large" if line.price >= 100 else "small"

    @listen("large")
    async def escalate(self) -> dict[str, Any]:
        side_effect("escalate")
        maybe_fail("escalate")
        await asyncio.sleep(0)
        return {"route": "large", "line": class_path(self.method_outputs[0])}

    @listen("small")
    def settle(self) -> dict[str, Any]:
        side_effect("settle")
        return {"route": "small", "line": class_path(self.method_outputs[0])}


@register_flow(name="async_bad_router", title="Async bad router (test)", inputs=EmptyInputs)
@persist()
class AsyncBadRouterFlow(Flow[AsyncState]):
    @start()
    async def begin(self) -> str:
        return "begun"

    @router(begin, emit=["ok"])
    async def decide(self) -> str:
        await asyncio.sleep(0)
        return "surprise"

    @listen("ok")
    def fine(self) -> str:
        return "fine"


class Summary(BaseModel):
    text: str
    words: int


class InnerFlow(Flow):
    """A flow a step kicks off and awaits; not registered, not persisted."""

    @start()
    async def summarise(self) -> Summary:
        side_effect("inner")
        return Summary(text="all good", words=2)


@register_flow(name="joins", title="Joins (test)", inputs=EmptyInputs)
@persist()
class JoinsFlow(Flow[AsyncState]):
    """Two starts joined by `and_` and `or_`; one of them awaits a nested flow's `kickoff_async`."""

    @start()
    async def delegate(self) -> Summary:
        side_effect("delegate")
        return await InnerFlow().kickoff_async()

    @start()
    def lookup(self) -> Invoice:
        side_effect("lookup")
        return invoice()

    @listen(or_(delegate, lookup))
    def first(self, value: Summary | Invoice) -> str:
        side_effect("first")
        return class_path(value)

    @listen(and_(delegate, lookup, first))
    def combine(self) -> dict[str, Any]:
        side_effect("combine")
        maybe_fail("combine")
        outputs = {class_path(output): output for output in self.method_outputs}
        summary, found = outputs[f"{__name__}.Summary"], outputs[f"{__name__}.Invoice"]
        return {"summary": summary.text, "invoice": found.number, "lines": len(found.lines)}


class FeedbackState(BaseModel):
    id: str = ""
    title: str = ""
    amount: float = 0.0


@register_flow(
    name="typed_feedback_retry", title="Typed feedback retry (test)", inputs=ReviewInputs, output_types=["typed_draft"]
)
@persist()
class TypedFeedbackRetryFlow(Flow[FeedbackState]):
    """`@human_feedback(emit=...)` whose listener reports the type of the feedback's output."""

    @start()
    @human_feedback(
        message="Check the typed draft",
        emit=["approved", "rejected"],
        provider=ReviewConsoleProvider(output_type="typed_draft", schema=Draft),
    )
    def draft(self) -> Draft:
        side_effect("draft")
        return Draft(title=self.state.title, amount=self.state.amount, confidence=0.4)

    @listen("approved")
    def publish(self, result: HumanFeedbackResult) -> dict[str, Any]:
        side_effect("publish")
        maybe_fail("publish")
        return {
            "output": class_path(result.output),
            "last_feedback_output": class_path(self.last_human_feedback.output),
            "method_output": class_path(self.method_outputs[0]),
        }

    @listen("rejected")
    def discard(self) -> str:
        return "discarded"
