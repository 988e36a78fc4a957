"""What CrewAI builds on its own, under the engine: the default model, tools on the demo model, crew memory.

The flows are in tests/agent_flows.py. Each run goes through `run_create` and an
inline worker, so `bootstrap_worker` has installed the console's CrewAI defaults.
"""

from __future__ import annotations

import pytest
from django_q.conf import Conf

from reviewconsole.engine.models import FlowRun, RunStatus, Step, StepKind
from reviewconsole.engine.services import run_create
from tests.agent_flows import TIDE
from tests.test_invoice_real_llm import API_KEY, MODEL, llm_server, real_llm  # noqa: F401 - fixtures
from tests.workers import QCluster, wait_for, worker_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def no_openai_key(monkeypatch):
    """CrewAI's own default needs OPENAI_API_KEY; without one, only the console's default can answer."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MODEL", raising=False)
    monkeypatch.delenv("OPENAI_MODEL_NAME", raising=False)


def run(flow_name: str, **inputs) -> FlowRun:
    created = run_create(flow_name=flow_name, inputs=inputs)
    created.refresh_from_db()
    return created


# --------------------------------------------------------------------------- item 6: every agent on LLM_MODEL


def test_an_agent_without_llm_runs_on_the_demo_model(settings):
    settings.LLM_MODEL = "demo"

    done = run("agent_without_llm")

    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result["models"] == ["demo"]
    assert done.result["note"]["headline"].startswith("Headline: ")


def test_an_agent_without_llm_calls_the_configured_server(real_llm):  # noqa: F811 - the fixture
    real_llm.answer = {"headline": "From the server", "detail": "Nothing the demo model would say"}

    done = run("agent_without_llm")

    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result["note"] == real_llm.answer
    assert done.result["models"] == [MODEL]
    assert [call["model"] for call in real_llm.requests] == [MODEL]
    assert real_llm.requests[0]["authorization"] == f"Bearer {API_KEY}"


def test_a_crew_that_plans_without_planning_llm_plans_on_the_configured_model(settings):
    settings.LLM_MODEL = "demo"

    done = run("planned_crew")

    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result["note"]["headline"].startswith("Headline: ")


# --------------------------------------------------------------------------- item 7: tools offline


@pytest.mark.parametrize("function_calling", [False, True], ids=["react", "native"])
def test_the_demo_model_calls_the_agents_tool_and_answers_from_its_result(function_calling):
    done = run("agent_with_tool", function_calling=function_calling)

    assert done.status == RunStatus.COMPLETED, done.error
    note = done.result["note"]
    # The tool's answer names the day it was asked about: 1, the lowest the schema allows.
    assert note["headline"] == f"Headline: {TIDE} on day 1"
    assert note["detail"] == f"Detail: {TIDE} on day 1"


@pytest.mark.parametrize("function_calling", [False, True], ids=["react", "native"])
def test_a_hierarchical_manager_on_the_demo_model_delegates_and_the_coworker_uses_its_tool(function_calling):
    done = run("hierarchical_crew", function_calling=function_calling)

    assert done.status == RunStatus.COMPLETED, done.error
    assert done.result["note"]["detail"] == f"Detail: {TIDE} on day 1"
    # Manager delegates, coworker calls its tool, coworker answers, manager answers: no retries to max_iter.
    assert Step.objects.filter(run=done, kind=StepKind.LLM).count() == 4


# --------------------------------------------------------------------------- item 8: memory is never silent


def test_crew_memory_without_an_embedder_fails_the_run_saying_what_to_set():
    done = run("crew_with_memory")

    assert done.status == RunStatus.FAILED
    assert "Crew 'crew' has memory=True but no embedder" in done.error
    assert "embedder=" in done.error and "OPENAI_API_KEY" in done.error


# --------------------------------------------------------------------------- the same in a real qcluster worker


@pytest.fixture
def cluster(transactional_db, tmp_path, monkeypatch):
    """One qcluster whose workers load tests/agent_flows.py and have no OpenAI key; tasks go through the broker."""
    monkeypatch.setattr(Conf, "SYNC", False)
    env = worker_env(FLOW_MODULES="flows,tests.engine_flows,tests.agent_flows", LLM_MODEL="demo")
    env.pop("OPENAI_API_KEY", None)
    started = QCluster(env, tmp_path / "qcluster.log")
    yield started
    started.stop()
    print(started.output())  # shown when the test fails


def _finished(created: FlowRun) -> FlowRun | None:
    created.refresh_from_db()
    return created if created.status in (RunStatus.COMPLETED, RunStatus.FAILED) else None


@pytest.mark.workers
def test_in_a_worker_agents_without_llm_run_on_the_demo_model_and_memory_without_embedder_fails(cluster):
    agent = run_create(flow_name="agent_without_llm", inputs={})
    memory = run_create(flow_name="crew_with_memory", inputs={})

    wait_for(lambda: _finished(agent), timeout=90, what="the agent run to finish", details=cluster.output)
    wait_for(lambda: _finished(memory), timeout=90, what="the memory run to finish", details=cluster.output)

    assert agent.status == RunStatus.COMPLETED, agent.error
    assert agent.result["models"] == ["demo"]
    assert memory.status == RunStatus.FAILED
    assert "has memory=True but no embedder" in memory.error
