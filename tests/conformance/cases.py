"""The conformance table: each flow shape with its inputs, its reviews and the result CrewAI gives.

Adding a flow shape is one row: the tests in tests/test_conformance.py run every row under the console and
under plain CrewAI and compare both with `expected`; rows naming `handoffs` are also failed there and retried,
and tests/test_conformance_workers.py kills a real worker inside a row's `killed_in` step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Review:
    """One pause: the console reviewer's decision, and what a person types at plain CrewAI's prompt."""

    outcome: str
    comment: str
    # Plain CrewAI's answer when it is not the comment (the console provider's JSON payload, for a step
    # without `emit`).
    typed: str | None = None
    # A rejection's reason code, which the console requires.
    reason_code: str = ""

    @property
    def plain_answer(self) -> str:
        return self.comment if self.typed is None else self.typed


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
    # Why a Retry or a crash in those steps still fails (an xfail reason), if it does.
    handoff_waits_on: str | None = None
    # The handoff step a worker is killed in under real qcluster processes (about 25 s a row, so not every one).
    killed_in: str = ""
    # Side effects (tests/engine_flows.side_effect) the run must leave, e.g. a tool's call.
    effects: tuple[str, ...] = ()
    # "issue 12 item N: ..." while another helper's fix for it is not merged.
    waits_on: str | None = None
    # Tells apart two rows of one flow.
    label: str = ""

    @property
    def id(self) -> str:
        name = self.flow.removeprefix("conf_")
        return f"{name}-{self.label}" if self.label else name


ITEM_1 = "issue 12 item 1: a replayed step hands its listener JSON instead of the model or CrewOutput it returned"
ITEM_2 = "issue 12 item 2: the router label guard calls an async router without awaiting it"
ITEM_3 = "issue 12 item 3: @human_feedback without provider calls input() in the worker"
ITEM_4 = "issue 12 item 4: exit() in a step escapes the runner"
ITEM_6 = "issue 12 item 6: an agent without llm= does not get LLM_MODEL"
ITEM_7 = "issue 12 item 7: the demo model never calls a tool"


def _note(comment: str) -> str:
    """The console provider's decision payload as a flow without `emit` reads it (README, pattern (a))."""
    return json.dumps({"outcome": "approved", "comment": comment})


CASES: list[Case] = [
    Case(
        flow="conf_lead_scoring",
        inputs={"leads": ["Ada at Initech", "Grace at Globex"]},
        reviews=(Review("approved", "approved, go ahead"),),
        expected={"contacted": "Ada", "email": "Dear Ada, ...", "feedback": "approved, go ahead"},
        handoffs=("pick_top",),
        waits_on=ITEM_3,
        handoff_waits_on=f"{ITEM_1}; {ITEM_3}",
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
        handoff_waits_on=ITEM_1,
        killed_in="write_chapters",
    ),
    Case(
        flow="conf_email_router",
        inputs={"sender": "client@example.com", "subject": "Invoice overdue"},
        expected={"category": "urgent", "reply": "Re: Invoice overdue", "logged": ["escalated", "logged"]},
        handoffs=("reply",),
        waits_on=ITEM_2,
        handoff_waits_on=ITEM_2,
    ),
    Case(
        flow="conf_email_router",
        label="routine",
        inputs={"sender": "client@example.com", "subject": "Lunch on Friday"},
        expected={"category": "routine", "reply": "Re: Lunch on Friday", "logged": ["queued", "logged"]},
        waits_on=ITEM_2,
    ),
    Case(
        flow="conf_research_handoff",
        inputs={"topic": "solar panels"},
        expected={"headline": "Headline: Current Task: Research solar panels", "facts": 0, "brief_type": "Brief"},
        handoffs=("brief", "publish"),
        handoff_waits_on=ITEM_1,
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
        waits_on=ITEM_6,
    ),
    Case(
        flow="conf_tool_agent",
        inputs={"topic": "solar panels"},
        expected={"stats_type": "WordStats"},
        effects=("tool:word_counter",),
        waits_on=ITEM_7,
    ),
    Case(
        flow="conf_feedback_default",
        inputs={"topic": "solar panels"},
        reviews=(Review("approved", "approved, ship it"), Review("approved", "tighten the intro")),
        expected={"note": "tighten the intro", "decided": ["draft:approved:Draft", "note:-:str"]},
        handoffs=("publish",),
        waits_on=ITEM_3,
        handoff_waits_on=ITEM_3,
    ),
    Case(
        flow="conf_feedback_default",
        label="rejected",
        inputs={"topic": "solar panels"},
        reviews=(Review("rejected", "rejected: too long", reason_code="other"),),
        expected={"discarded": "rejected: too long", "decided": ["draft:rejected:Draft"]},
        waits_on=ITEM_3,
    ),
    Case(
        flow="conf_feedback_console",
        inputs={"topic": "solar panels"},
        reviews=(
            Review("approved", "approved, ship it"),
            Review("approved", "tighten the intro", typed=_note("tighten the intro")),
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
