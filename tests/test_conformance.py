"""Flows written as CrewAI's docs write them run under the console as under plain CrewAI.

Each row of tests/conformance/cases.py runs twice: as a console run (inline tasks, reviews decided through
the queue) and with plain `flow.kickoff()`, both on the demo model. Both results must be the row's expected
one and the two final states alike. Rows with `handoffs` are also failed inside each of those steps and
retried, as the console's Retry does: the retried run must end as an uninterrupted one, the steps before the
failure replayed, not run again.
"""

from collections import Counter

import pytest
from crewai.flow.persistence.sqlite import SQLiteFlowPersistence

from reviewconsole.engine.models import RunStatus
from reviewconsole.engine.registry import get_flow
from reviewconsole.engine.services import run_create, run_retry
from tests.conformance.cases import CASES, HANDOFFS
from tests.conformance.harness import decide_reviews, run_plain, without_id

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def reviewer(django_user_model):
    return django_user_model.objects.create_user("conformance-reviewer", password="pw")


@pytest.mark.parametrize("case", [pytest.param(case, id=case.id) for case in CASES])
def test_runs_under_the_console_as_under_crewai(case, reviewer, side_effects, tmp_path, monkeypatch):
    plain_result, plain_state = run_plain(case, tmp_path, monkeypatch)
    plain_effects = side_effects()
    assert plain_result == case.expected

    reviews = iter(case.reviews)
    run = decide_reviews(run_create(flow_name=case.flow, inputs=case.inputs), reviews, reviewer)

    assert run.status == RunStatus.COMPLETED, f"{run.error}\n{run.traceback}"
    assert next(reviews, None) is None, "the run paused less often than plain CrewAI asked"
    assert run.result == case.expected
    assert without_id(run.state) == plain_state
    console_effects = side_effects()[len(plain_effects) :]
    assert Counter(console_effects) == Counter(plain_effects)
    for effect in case.effects:
        assert effect in plain_effects


@pytest.mark.parametrize(
    ("case", "step"),
    [pytest.param(case, step, id=f"{case.id}-{step}") for case, step in HANDOFFS],
)
def test_retry_after_a_failed_step_ends_as_an_uninterrupted_run(
    case, step, reviewer, side_effects, tmp_path, monkeypatch
):
    plain_result, plain_state = run_plain(case, tmp_path, monkeypatch)
    uninterrupted = Counter(side_effects())

    monkeypatch.setenv("FAIL_STEP", step)
    reviews = iter(case.reviews)
    run = decide_reviews(run_create(flow_name=case.flow, inputs=case.inputs), reviews, reviewer)
    assert run.status == RunStatus.FAILED
    assert f"injected failure in {step}" in run.error
    monkeypatch.delenv("FAIL_STEP")
    run_retry(run_id=run.id, actor=None)
    run = decide_reviews(run, reviews, reviewer)

    assert run.status == RunStatus.COMPLETED, f"{run.error}\n{run.traceback}"
    assert next(reviews, None) is None
    assert run.result == plain_result == case.expected
    assert without_id(run.state) == plain_state
    # Only the failed step ran twice: the steps before it were replayed.
    assert Counter(side_effects()) - uninterrupted == uninterrupted + Counter([step])


def test_a_step_calling_exit_fails_the_run_naming_it(side_effects):
    run = run_create(flow_name="conf_exit", inputs={})
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED
    assert "SystemExit" in run.error
    assert "no data to process" in run.error
    assert side_effects() == ["prepare", "bail_out"]


def test_under_plain_crewai_exit_in_a_step_ends_the_kickoff(tmp_path):
    flow = get_flow("conf_exit").flow_class(persistence=SQLiteFlowPersistence(str(tmp_path / "plain.db")))
    with pytest.raises(SystemExit, match="no data to process"):
        flow.kickoff()
