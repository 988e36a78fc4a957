"""Flows the engine tests run, registered when FLOW_MODULES includes this module.

Each step appends a line to the side-effect log named by SIDE_EFFECT_LOG, so a
test can see across processes how often each step really executed.
"""

import os
import time
from pathlib import Path

from crewai.flow.flow import Flow, listen, or_, router, start
from crewai.flow.human_feedback import HumanFeedbackResult, human_feedback
from crewai.flow.persistence import persist
from pydantic import BaseModel

from reviewconsole.engine.registry import register_flow
from reviewconsole.reviews.provider import ReviewConsoleProvider


def side_effect(step: str) -> None:
    log = os.environ.get("SIDE_EFFECT_LOG")
    if log:
        with Path(log).open("a") as handle:
            handle.write(step + "\n")


def maybe_fail(step: str) -> None:
    if os.environ.get("FAIL_STEP") == step:
        raise RuntimeError(f"injected failure in {step}")


def maybe_block(step: str) -> None:
    """Sleep inside `step` when BLOCK_STEP names it, so a test can kill the worker there."""
    if os.environ.get("BLOCK_STEP") == step:
        marker = os.environ.get("BLOCK_MARKER")
        if marker:
            Path(marker).write_text(step)
        time.sleep(float(os.environ.get("BLOCK_SECONDS", "30")))


class CounterInputs(BaseModel):
    label: str = "demo"
    loops: int = 3


class CounterState(BaseModel):
    id: str = ""
    label: str = ""
    loops: int = 3
    count: int = 0
    log: list[str] = []


@register_flow(name="counter", title="Counter (test)", inputs=CounterInputs)
@persist()
class CounterFlow(Flow[CounterState]):
    """prepare → increment → check, looping on "again" until `loops`, then finish."""

    @start()
    def prepare(self) -> str:
        side_effect("prepare")
        self.state.log.append("prepare")
        return f"prepared {self.state.label}"

    @listen(or_(prepare, "again"))
    def increment(self) -> int:
        self.state.count += 1
        side_effect(f"increment:{self.state.count}")
        maybe_block(f"increment:{self.state.count}")
        maybe_fail(f"increment:{self.state.count}")
        self.state.log.append(f"increment {self.state.count}")
        return self.state.count

    @router(increment, emit=["again", "done"])
    def check(self) -> str:
        side_effect(f"check:{self.state.count}")
        return "again" if self.state.count < self.state.loops else "done"

    @listen("done")
    def finish(self) -> dict:
        side_effect("finish")
        maybe_block("finish")
        maybe_fail("finish")
        return {"label": self.state.label, "count": self.state.count, "log": self.state.log}


class EmptyInputs(BaseModel):
    pass


class BadRouterState(BaseModel):
    id: str = ""


@register_flow(name="bad_router", title="Bad router (test)", inputs=EmptyInputs)
@persist()
class BadRouterFlow(Flow[BadRouterState]):
    @start()
    def begin(self) -> str:
        return "begun"

    @router(begin, emit=["ok"])
    def decide(self) -> str:
        return "surprise"

    @listen("ok")
    def fine(self) -> str:
        return "fine"


class DocsRouterInputs(BaseModel):
    amount: float = 0.0


class DocsRouterState(BaseModel):
    id: str = ""
    amount: float = 0.0


@register_flow(name="docs_router", title="Routers as in CrewAI's docs (test)", inputs=DocsRouterInputs)
class DocsRouterFlow(Flow[DocsRouterState]):
    """Routers without `emit=` or a Literal, one of them async, as CrewAI's docs write them."""

    @start()
    async def begin(self) -> float:
        return self.state.amount

    @router(begin)
    async def size(self) -> str:
        if self.state.amount < 0:
            return "nowhere"  # nothing listens to it: the run fails rather than ending silently
        return "large" if self.state.amount > 100 else "small"

    @listen("large")
    def escalate(self) -> str:
        side_effect("escalate")
        return "escalated"

    @router(begin)
    def parity(self) -> str:
        return "even" if int(self.state.amount) % 2 == 0 else "odd"

    @listen("small")
    async def file(self) -> str:
        side_effect("file")
        return "filed"

    @listen(or_("even", "odd"))
    def note(self) -> None:
        side_effect("note")


class UnstorableInputs(BaseModel):
    kind: str = "nan"


class UnstorableState(BaseModel):
    id: str = ""
    kind: str = ""
    total: float = 0.0


@register_flow(name="unstorable", title="Values JSON cannot hold (test)", inputs=UnstorableInputs)
@persist()
class UnstorableFlow(Flow[UnstorableState]):
    """A step that returns, or leaves in its state, a value JSON (or PostgreSQL) cannot hold."""

    @start()
    def measure(self) -> dict:
        if self.state.kind == "state_inf":
            self.state.total = float("inf")
            return {}
        if self.state.kind == "nul":
            return {"lines": ["ok", "bad\x00byte"]}
        return {"score": float("nan")}


class Draft(BaseModel):
    title: str
    amount: float
    confidence: float = 0.5


class ReviewInputs(BaseModel):
    title: str = "Invoice 7"
    amount: float = 120.0


class ReviewState(BaseModel):
    id: str = ""
    title: str = ""
    amount: float = 0.0
    final: dict = {}


@register_flow(name="emit_review", title="Emit review (test)", inputs=ReviewInputs, output_types=["draft"])
@persist()
class EmitReviewFlow(Flow[ReviewState]):
    """An unchanged CrewAI human-feedback flow: `emit` routes on the outcome."""

    @start()
    @human_feedback(
        message="Check the draft",
        emit=["approved", "rejected"],
        provider=ReviewConsoleProvider(output_type="draft"),
    )
    def draft(self) -> Draft:
        side_effect("draft")
        return Draft(title=self.state.title, amount=self.state.amount, confidence=0.4)

    @listen("approved")
    def publish(self, result: HumanFeedbackResult) -> dict:
        side_effect("publish")
        maybe_fail("publish")
        output = result.output if isinstance(result.output, dict) else result.output.model_dump()
        self.state.final = output
        return {"published": output}

    @listen("rejected")
    def discard(self, result: HumanFeedbackResult) -> dict:
        side_effect("discard")
        return {"discarded": True, "feedback": result.feedback}


@register_flow(name="payload_review", title="Payload review (test)", inputs=ReviewInputs, output_types=["draft"])
@persist()
class PayloadReviewFlow(Flow[ReviewState]):
    """The no-`emit` pattern: a plain router reads the decision from the result's metadata."""

    @start()
    @human_feedback(message="Check the draft", provider=ReviewConsoleProvider(output_type="draft"))
    def draft(self) -> Draft:
        side_effect("draft")
        return Draft(title=self.state.title, amount=self.state.amount, confidence=0.4)

    @router(draft, emit=["approved", "rejected"])
    def route_decision(self, result: HumanFeedbackResult) -> str:
        # A Draft, or its dict when a replay after a crash hands the step's result back.
        self.state.final = Draft.model_validate(result.output).model_dump()
        return result.metadata["outcome"]

    @listen("approved")
    def publish(self) -> dict:
        side_effect("publish")
        return {"published": self.state.final}

    @listen("rejected")
    def discard(self) -> dict:
        side_effect("discard")
        return {"discarded": True}


# --- Typed review flows: output type "typed_draft" validated by the Draft model. ---

from reviewconsole.reviews.decorators import human_review, review_decision  # noqa: E402


class TypedReviewState(BaseModel):
    id: str = ""
    title: str = ""
    amount: float = 0.0
    output_class: str = ""
    final: dict = {}
    decision: dict = {}


@register_flow(
    name="decorated_review", title="Decorated review (test)", inputs=ReviewInputs, output_types=["typed_draft"]
)
@persist()
class DecoratedReviewFlow(Flow[TypedReviewState]):
    """`@human_review` + `review_decision`: the router gets the decision with a validated Draft."""

    @start()
    @human_review(output_type="typed_draft", schema=Draft, message="Check the typed draft")
    def draft(self) -> Draft:
        side_effect("draft")
        return Draft(title=self.state.title, amount=self.state.amount, confidence=0.4)

    @router(draft, emit=["approved", "rejected"])
    def route_decision(self, result: HumanFeedbackResult) -> str:
        decision = review_decision(result, Draft)
        self.state.output_class = type(decision.output).__name__
        self.state.final = decision.output.model_dump()
        self.state.decision = {
            "outcome": decision.outcome,
            "edited": decision.edited,
            "comment": decision.comment,
            "reason_code": decision.reason_code,
            "reviewer": decision.reviewer,
            "expired": decision.expired,
        }
        return decision.outcome

    @listen("approved")
    def publish(self) -> dict:
        side_effect("publish")
        return {"published": self.state.final, "output_class": self.state.output_class, "decision": self.state.decision}

    @listen("rejected")
    def discard(self) -> dict:
        side_effect("discard")
        return {"discarded": True, "output_class": self.state.output_class, "decision": self.state.decision}


@register_flow(
    name="typed_emit_review", title="Typed emit review (test)", inputs=ReviewInputs, output_types=["typed_draft"]
)
@persist()
class TypedEmitReviewFlow(Flow[TypedReviewState]):
    """`@human_feedback(emit=...)` with a registered schema: listeners get a Draft back, not a dict."""

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
    def publish(self, result: HumanFeedbackResult) -> dict:
        side_effect("publish")
        output = result.output
        self.state.output_class = type(output).__name__
        published = output.model_dump() if isinstance(output, BaseModel) else output
        return {"published": published, "output_class": self.state.output_class}

    @listen("rejected")
    def discard(self, result: HumanFeedbackResult) -> dict:
        side_effect("discard")
        self.state.output_class = type(result.output).__name__
        return {"discarded": True, "output_class": self.state.output_class, "feedback": result.feedback}


# --- `@human_feedback` as CrewAI's docs write it: no provider; the console is the default. ---

DECISION_FACTS = ("outcome", "edited", "reason_code", "reviewer", "expired")


class PlainFeedbackState(BaseModel):
    id: str = ""
    title: str = ""
    amount: float = 0.0
    received: dict = {}


def received(result: HumanFeedbackResult) -> dict:
    """What a step got from the reviewer, as the run's result shows it."""
    output = result.output
    return {
        "output_class": type(output).__name__,
        "output": output.model_dump() if isinstance(output, BaseModel) else output,
        "feedback": result.feedback,
        "facts": {name: result.metadata.get(name) for name in DECISION_FACTS},
    }


@register_flow(name="plain_feedback", title="Plain feedback (test)", inputs=ReviewInputs, output_types=["plain_draft"])
@persist()
class PlainFeedbackFlow(Flow[PlainFeedbackState]):
    """No `emit`, no provider: a router reads the outcome from the result's metadata."""

    @start()
    @human_feedback(message="Check the plain draft")
    def draft(self) -> Draft:
        side_effect("draft")
        return Draft(title=self.state.title, amount=self.state.amount, confidence=0.4)

    @router(draft, emit=["approved", "rejected"])
    def route_decision(self, result: HumanFeedbackResult) -> str:
        self.state.received = received(result)
        return result.metadata["outcome"]

    @listen("approved")
    def publish(self) -> dict:
        side_effect("publish")
        return {"published": self.state.received}

    @listen("rejected")
    def discard(self) -> dict:
        side_effect("discard")
        return {"discarded": self.state.received}


@register_flow(
    name="plain_emit_feedback",
    title="Plain emit feedback (test)",
    inputs=ReviewInputs,
    output_types=["plain_draft", "plain_memo"],
)
@persist()
class PlainEmitFeedbackFlow(Flow[PlainFeedbackState]):
    """`emit`, no provider, in a flow of two output types: the step names its own in its metadata."""

    @start()
    @human_feedback(message="Check the memo", emit=["approved", "rejected"], metadata={"output_type": "plain_memo"})
    def draft(self) -> Draft:
        side_effect("draft")
        return Draft(title=self.state.title, amount=self.state.amount, confidence=0.4)

    @listen("approved")
    def publish(self, result: HumanFeedbackResult) -> dict:
        side_effect("publish")
        maybe_fail("publish")
        return {"published": received(result)}

    @listen("rejected")
    def discard(self, result: HumanFeedbackResult) -> dict:
        side_effect("discard")
        return {"discarded": received(result)}


@register_flow(name="docs_feedback", title="Feedback as in CrewAI's docs (test)", inputs=ReviewInputs)
class DocsFeedbackFlow(Flow[PlainFeedbackState]):
    """No `output_types`, no provider, no `@persist()`: the step pauses with the flow's name as its output type,
    and the run is checkpointed all the same."""

    @start()
    @human_feedback(message="Check the draft", emit=["approved", "rejected"])
    def draft(self) -> Draft:
        side_effect("draft")
        return Draft(title=self.state.title, amount=self.state.amount, confidence=0.4)

    @listen("approved")
    def publish(self, result: HumanFeedbackResult) -> dict:
        side_effect("publish")
        maybe_fail("publish")
        return {"published": received(result)}

    @listen("rejected")
    def discard(self, result: HumanFeedbackResult) -> dict:
        side_effect("discard")
        return {"discarded": received(result)}


# Flows passing typed values (models, crew results, dates...) and async steps, for the replay tests.
import tests.typed_flows  # noqa: E402, F401
