"""The conformance table: each flow shape with its inputs, its reviews and the result CrewAI gives.

Adding a flow shape is one row: the tests in tests/test_conformance.py run every row under the console and
under plain CrewAI and compare both with `expected`; rows naming `handoffs` are also failed there and retried,
and tests/test_conformance_workers.py kills a real worker inside a row's `killed_in` step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Review:
    """One pause: the console reviewer's decision; the comment is also what a person types at CrewAI's prompt."""

    outcome: str
    comment: str
    # A rejection's reason code, which the console requires.
    reason_code: str = ""


@dataclass(frozen=True)
class Case:
    flow: str
    inputs: dict[str, Any]
    # The run's result, as JSON: what plain CrewAI returns for these inputs and reviews.
    expected: Any
    reviews: tuple[Review, ...] = ()
    # Steps a test fails in and retries: mostly those whose input is a model or crew result returned by the
    # step before, which a Retry, or a worker killed there, must hand over with the same type.
    handoffs: tuple[str, ...] = ()
    # The handoff step a worker is killed in under real qcluster processes (about 25 s a row, so not every one).
    killed_in: str = ""
    # Side effects (tests/engine_flows.side_effect) the run must leave, e.g. a tool's call.
    effects: tuple[str, ...] = ()
    # Tells apart two rows of one flow.
    label: str = ""

    @property
    def id(self) -> str:
        name = self.flow.removeprefix("conf_")
        return f"{name}-{self.label}" if self.label else name


CASES: list[Case] = [
    Case(
        flow="conf_lead_scoring",
        inputs={"leads": ["Ada at Initech", "Grace at Globex"]},
        reviews=(Review("approved", "approved, go ahead"),),
        expected={"contacted": "Ada", "email": "Dear Ada, ...", "feedback": "approved, go ahead"},
        handoffs=("pick_top",),
    ),
    Case(
        flow="conf_self_evaluation",
        inputs={"topic": "solar panels"},
        expected={"post": "Demo answer to: Current Task: Write post 3 about solar panels", "attempts": 3},
        # Inside the loop, and after it: the replayed router must send the run round the loop again.
        handoffs=("write_post:2", "save_post"),
    ),
    Case(
        flow="conf_book_writer",
        inputs={"topic": "solar panels"},
        expected={"titles": ["Title: Current Task: Outline a short book on solar panels"] * 2, "length": 188},
        handoffs=("write_chapters", "join_book"),
        killed_in="write_chapters",
    ),
    Case(
        flow="conf_email_router",
        inputs={"sender": "client@example.com", "subject": "Invoice overdue"},
        expected={"category": "urgent", "reply": "Re: Invoice overdue", "logged": ["escalated", "logged"]},
        handoffs=("reply",),
    ),
    Case(
        flow="conf_email_router",
        label="routine",
        inputs={"sender": "client@example.com", "subject": "Lunch on Friday"},
        expected={"category": "routine", "reply": "Re: Lunch on Friday", "logged": ["queued", "logged"]},
    ),
    Case(
        flow="conf_research_handoff",
        inputs={"topic": "solar panels"},
        expected={"headline": "Headline: Current Task: Research solar panels", "facts": 0, "brief_type": "Brief"},
        handoffs=("brief", "publish"),
        killed_in="brief",
    ),
    Case(
        flow="conf_dict_state",
        inputs={"items": ["b", "a", "c"]},
        expected={"sorted": ["a", "b", "c"], "count": 3, "notes": 1},
        handoffs=("sort_items", "count_items"),
        killed_in="sort_items",
    ),
    Case(flow="conf_hierarchical", inputs={"topic": "solar panels"}, expected={"tasks": 2, "has_text": True}),
    Case(
        flow="conf_default_llm",
        inputs={"topic": "solar panels"},
        expected={"verdict_type": "Verdict", "has_label": True},
    ),
    Case(
        flow="conf_tool_agent",
        inputs={"topic": "solar panels"},
        expected={"stats_type": "WordStats"},
        effects=("tool:word_counter",),
    ),
    Case(
        flow="conf_feedback_default",
        inputs={"topic": "solar panels"},
        reviews=(Review("approved", "approved, ship it"), Review("approved", "tighten the intro")),
        expected={"note": "tighten the intro", "decided": ["draft:approved:Draft", "note:-:str"]},
        handoffs=("publish",),
    ),
    Case(
        flow="conf_feedback_default",
        label="rejected",
        inputs={"topic": "solar panels"},
        reviews=(Review("rejected", "rejected: too long", reason_code="other"),),
        expected={"discarded": "rejected: too long", "decided": ["draft:rejected:Draft"]},
    ),
    Case(
        flow="conf_feedback_console",
        inputs={"topic": "solar panels"},
        reviews=(
            Review("approved", "approved, ship it"),
            Review("approved", "tighten the intro"),
        ),
        expected={"note": "tighten the intro", "decided": ["draft:approved:Draft", "note:-:str"]},
        handoffs=("publish",),
        # After both reviews: the killed worker had resumed the run.
        killed_in="publish",
    ),
    Case(
        flow="conf_feedback_console",
        label="rejected",
        inputs={"topic": "solar panels"},
        reviews=(Review("rejected", "rejected: too long", reason_code="other"),),
        expected={"discarded": "rejected: too long", "decided": ["draft:rejected:Draft"]},
    ),
]

HANDOFFS = [(case, step) for case in CASES for step in case.handoffs]
KILLS = [case for case in CASES if case.killed_in]
