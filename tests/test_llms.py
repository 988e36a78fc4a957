"""Offline LLMs: the demo model, the fixed-outcome model and build_llm().

No database: these run CrewAI in-process against models that never open a socket.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime
from typing import Any, Literal

import pytest
from crewai import Agent, Crew, Process, Task
from crewai.events.event_bus import crewai_event_bus
from crewai.events.types.llm_events import (
    LLMCallCompletedEvent,
    LLMCallFailedEvent,
    LLMCallStartedEvent,
    LLMStreamChunkEvent,
)
from crewai.flow.flow import Flow, listen, start
from crewai.flow.human_feedback import HumanFeedbackCollapseError, human_feedback
from crewai.llms.base_llm import BaseLLM
from pydantic import BaseModel, Field, Json

from reviewconsole.llm.configured import build_llm, llm_label
from reviewconsole.llm.decision_model import OutcomeLLM
from reviewconsole.llm.demo_model import DEMO_MODEL_LABEL, DemoLLM
from reviewconsole.llm.example_data import example_from_model
from reviewconsole.llm.responders import DEMO_RESPONDERS, register_responder, unregister_responder


class Finding(BaseModel):
    title: str
    severity: int = Field(ge=1, le=5)


class Review(BaseModel):
    verdict: Literal["approve", "revise", "reject"]
    confidence: float = Field(ge=0, le=1)
    summary: str = Field(max_length=60)
    findings: list[Finding] = Field(min_length=1)
    tags: list[str]
    blocking: bool
    reviewer_note: str | None = None
    first_finding: Finding | None = None


def _capture(*event_types: type) -> tuple[list[Any], Any]:
    """Collect events of ``event_types`` while the returned scope is open."""
    seen: list[Any] = []
    scope = crewai_event_bus.scoped_handlers()
    scope.__enter__()

    def handler(source: Any, event: Any) -> None:
        seen.append(event)

    for event_type in event_types:
        crewai_event_bus.on(event_type)(handler)
    return seen, scope


@pytest.fixture
def events():
    """Events the bus delivered during the test (flushed before reading)."""
    seen, scope = _capture(LLMCallStartedEvent, LLMCallCompletedEvent, LLMCallFailedEvent, LLMStreamChunkEvent)

    def read() -> list[Any]:
        crewai_event_bus.flush()
        return list(seen)

    yield read
    crewai_event_bus.flush()
    scope.__exit__(None, None, None)


@pytest.fixture(autouse=True)
def _no_demo_delay(settings, monkeypatch):
    settings.DEMO_LLM_DELAY_MS = 0
    monkeypatch.delenv("DEMO_LLM_DELAY_MS", raising=False)


# --------------------------------------------------------------------------- DemoLLM basics


def test_demo_llm_identity():
    llm = DemoLLM()
    assert llm.model == "demo"
    assert DEMO_MODEL_LABEL == "demo model"
    assert llm_label(llm) == "demo model"
    assert llm.supports_function_calling() is False
    assert DemoLLM.call._crewai_rate_limit_wrapped is True  # BaseLLM's retry wrapper applies


def test_structured_output_validates_against_response_model():
    answer = DemoLLM().call("Review the ACME supply contract\nIt has 12 clauses.", response_model=Review)

    assert isinstance(answer, str)
    review = Review.model_validate_json(answer)
    assert review.verdict == "approve"  # first enum value
    assert review.confidence == 0.9
    assert "ACME supply contract" in review.summary
    assert len(review.findings) == 1 and review.findings[0].severity == 1  # min_length / ge honoured
    assert review.tags == [] and review.blocking is False


def test_schema_fallback_respects_constraints_and_formats():
    class Odd(BaseModel):
        count: int = Field(gt=2)
        ratio: float = Field(gt=1, lt=3)
        code: str = Field(min_length=30)
        ident: uuid.UUID
        at: datetime
        payload: Json[dict[str, int]]
        level: Literal["only"]

    data = example_from_model(Odd, "Check the invoices")
    odd = Odd.model_validate(data)
    assert odd.count == 3 and odd.ratio == 2.0 and len(odd.code) >= 30 and odd.level == "only"
    assert example_from_model(Odd, "Check the invoices") == data


def test_registered_responder_builds_the_answer():
    def responder(prompt: str) -> dict[str, Any]:
        verdict = "reject" if "missing signature" in prompt else "approve"
        return {
            "verdict": verdict,
            "confidence": 0.5,
            "summary": "checked",
            "findings": [{"title": "signature", "severity": 5}],
            "tags": ["legal"],
            "blocking": verdict == "reject",
        }

    register_responder(Review, responder)
    try:
        answer = DemoLLM().call(
            [
                {"role": "system", "content": "You review contracts."},
                {"role": "user", "content": "Contract text: missing signature on page 3"},
            ],
            response_model=Review,
        )
    finally:
        unregister_responder(Review)

    review = Review.model_validate_json(answer)
    assert review.verdict == "reject" and review.blocking is True
    assert "Review" not in DEMO_RESPONDERS


def test_responder_returning_invalid_data_fails_with_event(events):
    DemoLLM.register_responder("Review", lambda prompt: {"verdict": "maybe"})
    try:
        with pytest.raises(ValueError):
            DemoLLM().call("Review this", response_model=Review)
    finally:
        unregister_responder("Review")

    seen = events()
    assert [type(event) for event in seen] == [LLMCallStartedEvent, LLMCallFailedEvent]
    assert seen[1].model == "demo"


def test_text_answer_mentions_first_line_of_last_user_message():
    answer = DemoLLM().call(
        [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "An earlier question"},
            {"role": "assistant", "content": "An earlier answer"},
            {"role": "user", "content": "\n  Summarise the quarterly report\nSecond line"},
        ]
    )
    assert "Summarise the quarterly report" in answer
    assert "Second line" not in answer
    assert "Final Answer:" not in answer  # plain text outside an agent


def test_same_prompt_same_answer():
    prompt = [{"role": "user", "content": "Assess vendor risk for Globex"}]
    first, second = DemoLLM(), DemoLLM()

    assert first.call(prompt) == second.call(prompt) == first.call(prompt)
    assert first.call(prompt, response_model=Review) == second.call(prompt, response_model=Review)
    assert first.call("Assess vendor risk for Initech") != first.call(prompt)


def test_acall_matches_call():
    llm = DemoLLM()
    assert asyncio.run(llm.acall("Draft a reply")) == llm.call("Draft a reply")
    assert asyncio.run(llm.acall("Draft a reply", response_model=Review)) == llm.call(
        "Draft a reply", response_model=Review
    )


# --------------------------------------------------------------------------- delay


def test_delay_setting_is_honoured(settings):
    settings.DEMO_LLM_DELAY_MS = 50
    llm = DemoLLM()

    started = time.monotonic()
    llm.call("Slow please")
    assert time.monotonic() - started >= 0.05

    started = time.monotonic()
    asyncio.run(llm.acall("Slow please"))
    assert time.monotonic() - started >= 0.05


def test_delay_falls_back_to_environment(settings, monkeypatch):
    settings.DEMO_LLM_DELAY_MS = None
    monkeypatch.setenv("DEMO_LLM_DELAY_MS", "50")

    started = time.monotonic()
    DemoLLM().call("Slow please")
    assert time.monotonic() - started >= 0.05


# --------------------------------------------------------------------------- events and usage


def test_llm_events_carry_token_usage(events):
    llm = DemoLLM()
    answer = llm.call(
        [
            {"role": "system", "content": "You check facts."},
            {"role": "user", "content": "Is the sky green today"},
        ]
    )

    seen = events()
    assert [type(event) for event in seen] == [LLMCallStartedEvent, LLMCallCompletedEvent]
    started, completed = seen
    assert started.call_id == completed.call_id
    assert completed.model == "demo"
    assert completed.response == answer
    prompt_words, answer_words = 3 + 5, len(answer.split())
    assert completed.usage == {
        "prompt_tokens": prompt_words,
        "completion_tokens": answer_words,
        "total_tokens": prompt_words + answer_words,
    }
    summary = llm.get_token_usage_summary()
    assert summary.prompt_tokens == prompt_words
    assert summary.completion_tokens == answer_words
    assert summary.successful_requests == 1


def test_streaming_emits_chunks_that_rebuild_the_answer(events):
    answer = DemoLLM(stream=True).call("Stream the summary")

    chunks = [event.chunk for event in events() if isinstance(event, LLMStreamChunkEvent)]
    assert len(chunks) > 1
    assert "".join(chunks) == answer


# --------------------------------------------------------------------------- agents


def test_one_agent_crew_finishes_offline_in_one_llm_call(events):
    agent = Agent(
        role="Contract reviewer",
        goal="Review contracts",
        backstory="You read contracts for a living.",
        llm=DemoLLM(),
        max_iter=2,
        verbose=False,
    )
    task = Task(description="Summarise the ACME contract.", expected_output="A short summary", agent=agent)

    result = Crew(agents=[agent], tasks=[task], process=Process.sequential, verbose=False).kickoff()

    assert result.raw == "Demo answer to: Current Task: Summarise the ACME contract."
    completed = [event for event in events() if isinstance(event, LLMCallCompletedEvent)]
    assert len(completed) == 1
    assert completed[0].usage["total_tokens"] > 0


def test_agent_task_with_output_pydantic_gets_a_valid_model():
    agent = Agent(role="Reviewer", goal="Judge", backstory="Strict.", llm=DemoLLM(), max_iter=2, verbose=False)
    task = Task(description="Judge the ACME contract.", expected_output="A review", agent=agent, output_pydantic=Review)

    result = Crew(agents=[agent], tasks=[task], process=Process.sequential, verbose=False).kickoff()

    assert isinstance(result.pydantic, Review)
    assert "Judge the ACME contract" in result.pydantic.summary


# --------------------------------------------------------------------------- outcome model and feedback collapse


class _FixedFeedback:
    """Synchronous HumanFeedbackProvider: the reviewer always types "some text"."""

    def __init__(self) -> None:
        self.requests: list[str] = []

    def request_feedback(self, context: Any, flow: Any) -> str:
        self.requests.append(context.method_name)
        return "some text"


def _review_flow(llm: Any, provider: _FixedFeedback) -> Flow:
    class ReviewFlow(Flow):
        @start()
        @human_feedback(message="Approve this draft?", emit=["approved", "rejected"], llm=llm, provider=provider)
        def draft(self) -> str:
            return "draft v1"

        @listen("approved")
        def publish(self) -> str:
            return "published"

        @listen("rejected")
        def archive(self) -> str:
            return "archived"

    return ReviewFlow()


def test_outcome_llm_answers_its_outcome(events):
    class Choice(BaseModel):
        outcome: Literal["approved", "rejected"]

    llm = OutcomeLLM(outcome="rejected")
    answer = llm.call("Feedback: looks great", response_model=Choice)

    assert llm.model == "decision"
    assert json.loads(answer) == {"outcome": "rejected"}
    assert Choice.model_validate_json(answer).outcome == "rejected"
    assert llm.call("anything") == answer
    # A person's decision is not a model's call: nothing for a run's timeline to show as one.
    assert not [event for event in events() if isinstance(event, LLMCallStartedEvent | LLMCallCompletedEvent)]


def test_outcome_llm_collapses_feedback():
    flow = _review_flow(OutcomeLLM(outcome="approved"), _FixedFeedback())
    outcomes = ["approved", "rejected"]

    assert flow._collapse_to_outcome("some text", outcomes, OutcomeLLM(outcome="approved")) == "approved"
    assert flow._collapse_to_outcome("some text", outcomes, OutcomeLLM(outcome="rejected")) == "rejected"
    with pytest.raises(HumanFeedbackCollapseError):
        flow._collapse_to_outcome("some text", outcomes, OutcomeLLM(outcome="escalate"))


@pytest.mark.parametrize(("outcome", "listener_result"), [("approved", "published"), ("rejected", "archived")])
def test_human_feedback_flow_routes_on_outcome_llm(outcome, listener_result):
    provider = _FixedFeedback()
    flow = _review_flow(OutcomeLLM(outcome=outcome), provider)

    result = flow.kickoff()

    assert provider.requests == ["draft"]
    assert result == listener_result
    assert flow.last_human_feedback.feedback == "some text"
    assert flow.last_human_feedback.outcome == outcome


def test_demo_llm_collapses_feedback_by_the_outcome_it_names():
    flow = _review_flow(DemoLLM(), _FixedFeedback())
    outcomes = ["approved", "rejected"]

    assert flow._collapse_to_outcome("Rejected: cite your sources", outcomes, DemoLLM()) == "rejected"
    assert flow._collapse_to_outcome("fine, I approve", outcomes, DemoLLM()) == "approved"
    assert flow._collapse_to_outcome("some text", outcomes, DemoLLM()) == "approved"  # first outcome


# --------------------------------------------------------------------------- build_llm


@pytest.fixture
def llm_env(settings, monkeypatch):
    for name in ("LLM_MODEL", "LLM_BASE_URL", "LLM_API_KEY"):
        setattr(settings, name, None)
        monkeypatch.delenv(name, raising=False)
    return settings


def test_build_llm_defaults_to_demo(llm_env):
    llm = build_llm()
    assert isinstance(llm, DemoLLM)
    assert llm_label(llm) == "demo model"


def test_build_llm_real_model_from_settings(llm_env):
    llm_env.LLM_MODEL = "openai/gpt-4o-mini"
    llm_env.LLM_BASE_URL = "http://127.0.0.1:9/v1"
    llm_env.LLM_API_KEY = "sk-test"

    llm = build_llm()

    assert isinstance(llm, BaseLLM) and not isinstance(llm, DemoLLM)
    assert llm.model == "gpt-4o-mini"
    assert llm.base_url == "http://127.0.0.1:9/v1"
    assert llm.api_key == "sk-test"
    assert llm_label(llm) == "gpt-4o-mini"


def test_build_llm_reads_environment_and_omits_unset_options(llm_env, monkeypatch):
    monkeypatch.setenv("LLM_MODEL", "ollama/llama3.1")

    llm = build_llm()

    assert not isinstance(llm, DemoLLM)
    assert "llama3.1" in llm.model
    assert "api_key" not in llm.additional_params and "base_url" not in llm.additional_params


# --------------------------------------------------------------------------- tools


class Summary(BaseModel):
    text: str


TIDE_FUNCTION = {
    "type": "function",
    "function": {
        "name": "tide_table",
        "description": "High tide at a harbour on a day.",
        "parameters": {
            "type": "object",
            "properties": {"harbour": {"type": "string"}, "day": {"type": "integer", "minimum": 1, "maximum": 31}},
            "required": ["harbour", "day"],
        },
    },
}


def test_native_tools_get_a_tool_call_whose_arguments_fit_the_schema(events):
    llm = DemoLLM(function_calling=True)
    assert llm.supports_function_calling() and not DemoLLM().supports_function_calling()

    calls = llm.call([{"role": "user", "content": "Tides at Dover"}], tools=[TIDE_FUNCTION])

    assert isinstance(calls, list) and len(calls) == 1
    assert calls[0]["function"]["name"] == "tide_table"
    assert json.loads(calls[0]["function"]["arguments"]) == {"harbour": "Harbour: Tides at Dover", "day": 1}
    assert llm.call([{"role": "user", "content": "Tides at Dover"}], tools=[TIDE_FUNCTION]) == calls
    completed = [event for event in events() if isinstance(event, LLMCallCompletedEvent)]
    assert [event.call_type.value for event in completed] == ["tool_call", "tool_call"]


def test_native_tool_call_runs_the_function_when_the_caller_passes_it():
    answer = DemoLLM(function_calling=True).call(
        [{"role": "user", "content": "Tides at Dover"}],
        tools=[TIDE_FUNCTION],
        available_functions={"tide_table": lambda harbour, day: f"06:12 at {harbour}, day {day}"},
    )

    assert answer == "06:12 at Harbour: Tides at Dover, day 1"


def test_after_the_tool_ran_the_answer_is_built_from_its_result():
    messages = [
        {"role": "user", "content": "Tides at Dover"},
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "tool", "content": "High tide 06:12", "tool_call_id": "call_demo_1"},
    ]

    assert DemoLLM(function_calling=True).call(messages, tools=[TIDE_FUNCTION]) == "High tide 06:12"
    summary = Summary.model_validate_json(DemoLLM().call(messages, response_model=Summary))
    assert summary.text == "Text: High tide 06:12"


def test_a_schema_asked_for_in_the_prompt_gets_json_that_follows_it():
    schema = {"json_schema": {"schema": Summary.model_json_schema()}, "type": "json_schema"}
    messages = [
        {
            "role": "system",
            "content": f"Format your final answer according to the following OpenAPI schema: {json.dumps(schema)}",
        },
        {"role": "user", "content": "High tide 06:12"},
    ]

    assert Summary.model_validate_json(DemoLLM().call(messages)).text == "Text: High tide 06:12"
