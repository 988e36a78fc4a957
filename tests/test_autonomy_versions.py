"""Flow versions: gate decisions record the version and the model; evidence, recommendation and guard count the
current version's; a new version starts at full review until a manager carries the old evidence over."""

import importlib
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.urls import reverse
from pydantic import BaseModel

from reviewconsole.autonomy.guard import guard_window
from reviewconsole.autonomy.models import AutonomyPolicy, FieldError, GateDecision, PolicyChange, Route, Verdict
from reviewconsole.autonomy.recommendation import recommend
from reviewconsole.autonomy.selectors import field_error_rates
from reviewconsole.autonomy.services import (
    PolicyError,
    gate,
    policy_ensure,
    policy_evidence_carry_over,
    policy_update,
    policy_version_observe,
    verdict_record,
)
from reviewconsole.autonomy.versions import UNRECORDED_LABEL, evidence_filter
from reviewconsole.engine import registry
from reviewconsole.engine.context import Execution, current_execution
from reviewconsole.engine.models import FlowRun, PendingFeedback
from reviewconsole.engine.registry import FlowSpec, flow_version, output_type_version, source_version
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.llm.configured import configured_model_id
from reviewconsole.reviews.models import Decision, ReviewItem
from tests.paused_runs import paused_item
from tests.people import client_for, user_in_role

pytestmark = pytest.mark.django_db

TYPE = "versioned_doc"
NEVER_AUDIT = random.Random(0)


class VersionedFlow:
    """A stand-in flow class: its versions are declared, so its source is never hashed."""


@pytest.fixture
def flow_at(monkeypatch):
    """Make the flow that declares TYPE be at a declared version, as a deploy would."""
    registry.load_flows()

    def at(version: str) -> None:
        spec = FlowSpec(
            name="versioned", title="Versioned", flow_class=VersionedFlow, input_model=BaseModel, version=version
        )
        monkeypatch.setitem(registry._flows, "versioned", FlowSpec(**{**spec.__dict__, "output_types": (TYPE,)}))

    return at


def policy() -> AutonomyPolicy:
    return AutonomyPolicy.objects.get(output_type=TYPE)


def set_threshold(value: float | None) -> None:
    policy_update(output_type=TYPE, changes={"threshold": value, "audit_rate": 0.0}, by=None, reason="test set-up")


def verdicts(version: str, n: int, confidence: float = 0.95) -> None:
    """`n` correct verdicts on outputs of `version`, gated under no threshold."""
    GateDecision.objects.bulk_create(
        GateDecision(
            output_type=TYPE,
            confidence=confidence,
            route=Route.HUMAN_REVIEW,
            reason="always_review",
            flow_version=version,
            verdict=Verdict.CORRECT,
        )
        for _ in range(n)
    )


def current_evidence() -> int:
    """The verdicts the recommendation reads for the type's current version."""
    current = policy()
    return recommend(TYPE, policy=current, where=evidence_filter(current.evidence_versions))["reviewed"]


# --------------------------------------------------------------------------- the version of a flow


FLOW_SOURCE = '''
class InvoiceFlow:
    """Reads an invoice."""

    prompt = "{prompt}"
'''


def write_module(directory: Path, name: str, prompt: str) -> type:
    (directory / f"{name}.py").write_text(FLOW_SOURCE.format(prompt=prompt))
    return importlib.import_module(name).InvoiceFlow


def spec_of(flow_class: type, version: str = "") -> FlowSpec:
    return FlowSpec(name="f", title="F", flow_class=flow_class, input_model=BaseModel, version=version)


def test_the_source_hash_changes_with_the_source_and_only_with_it(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    first = write_module(tmp_path, "versions_flow_a", "Read the invoice.")
    same = write_module(tmp_path, "versions_flow_a_copy", "Read the invoice.")
    edited = write_module(tmp_path, "versions_flow_b", "Read the invoice line by line.")
    version = flow_version(spec_of(first))
    assert len(version) == 12 and int(version, 16) >= 0
    assert flow_version(spec_of(same)) == version
    assert flow_version(spec_of(edited)) != version
    assert flow_version(spec_of(first)) == version


def test_the_source_hash_is_the_same_in_another_process(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    flow_class = write_module(tmp_path, "versions_flow_c", "Read the invoice.")
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import versions_flow_c; from pydantic import BaseModel; "
        "from reviewconsole.engine.registry import FlowSpec, flow_version; "
        "print(flow_version(FlowSpec(name='f', title='F', flow_class=versions_flow_c.InvoiceFlow, "
        "input_model=BaseModel)))"
    )
    other = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert other.stdout.strip() == flow_version(spec_of(flow_class))


def test_a_declared_version_wins_over_the_source_hash(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    flow_class = write_module(tmp_path, "versions_flow_d", "Read the invoice.")
    assert flow_version(spec_of(flow_class, version="2")) == "2"
    with pytest.raises(ValueError, match="at most 40"):
        registry.register_flow(name="x", title="X", inputs=BaseModel, version="v" * 41)


def test_a_sample_flow_is_versioned_by_its_source():
    spec = registry.get_flow("invoice_processing")
    assert not spec.version
    assert output_type_version("invoice") == flow_version(spec) == source_version(Path(spec_file(spec)).read_text())
    assert output_type_version("no_flow_declares_this") == ""


def spec_file(spec: FlowSpec) -> str:
    return sys.modules[spec.flow_class.__module__].__file__


# --------------------------------------------------------------------------- the gate


def test_the_gate_records_the_version_and_inside_a_run_the_model(flow_at, settings):
    flow_at("1")
    gate(TYPE, 0.5)
    settings.LLM_MODEL = "openai/gpt-4o-mini"
    run = FlowRun.objects.create(flow_name="versioned")
    token = current_execution.set(Execution(run_id=str(run.id), flow_name="versioned"))
    try:
        gate(TYPE, 0.6)
    finally:
        current_execution.reset(token)
    outside, inside = GateDecision.objects.order_by("id")
    assert (outside.flow_version, outside.model) == ("1", "")
    assert (inside.flow_version, inside.model) == ("1", "openai/gpt-4o-mini") == ("1", configured_model_id())


def test_the_first_version_seen_keeps_the_threshold_and_the_earlier_evidence(flow_at):
    """Decisions from before versions were recorded are the evidence of the version the policy sees first."""
    policy_ensure(output_type=TYPE)
    set_threshold(0.5)
    verdicts("", 30)
    flow_at("1")
    assert gate(TYPE, 0.9, rng=NEVER_AUDIT) == Route.AUTO_APPROVED
    current = policy()
    assert (current.flow_version, current.evidence_versions, current.threshold) == ("1", ["", "1"], 0.5)
    assert not PolicyChange.objects.filter(changes__has_key="flow_version").exists()
    assert current_evidence() == 30


def test_a_new_flow_version_starts_at_review_everything(flow_at):
    flow_at("1")
    gate(TYPE, 0.2)
    set_threshold(0.5)
    assert gate(TYPE, 0.9, rng=NEVER_AUDIT) == Route.AUTO_APPROVED
    flow_at("2")
    assert gate(TYPE, 0.9, rng=NEVER_AUDIT) == Route.HUMAN_REVIEW
    decision = GateDecision.objects.latest("id")
    assert (decision.flow_version, decision.reason, decision.threshold) == ("2", "always_review", None)
    change = PolicyChange.objects.get(changes__has_key="flow_version")
    assert change.automatic and change.by is None
    assert change.changes == {"flow_version": ["1", "2"], "threshold": [0.5, None]}
    assert "1 → 2" in change.reason and "review everything" in change.reason
    assert (policy().flow_version, policy().evidence_versions, policy().threshold) == ("2", ["2"], None)
    # Still so on the next outputs, and logged once.
    assert gate(TYPE, 0.99, rng=NEVER_AUDIT) == Route.HUMAN_REVIEW
    assert PolicyChange.objects.filter(changes__has_key="flow_version").count() == 1


def test_two_workers_seeing_the_new_version_at_once_log_one_change(flow_at):
    flow_at("1")
    gate(TYPE, 0.2)
    set_threshold(0.5)
    # Both read the policy before either recorded the new version.
    first, second = policy(), policy()
    policy_version_observe(policy=first, version="2")
    seen_by_second = policy_version_observe(policy=second, version="2")
    assert seen_by_second.flow_version == "2" and seen_by_second.threshold is None
    assert PolicyChange.objects.filter(changes__has_key="flow_version").count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_gating_the_first_outputs_of_a_new_version_at_once_log_one_change(flow_at):
    flow_at("1")
    gate(TYPE, 0.2)
    set_threshold(0.5)
    flow_at("2")
    barrier = threading.Barrier(2)
    routes: list[object] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=10)
            routes.append(gate(TYPE, 0.9, rng=random.Random(0)))
        except Exception as error:  # reported by the assertion below
            routes.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert routes == [Route.HUMAN_REVIEW, Route.HUMAN_REVIEW]
    assert PolicyChange.objects.filter(changes__has_key="flow_version").count() == 1
    assert (policy().flow_version, policy().threshold) == ("2", None)


def test_an_old_worker_during_a_deploy_changes_nothing_and_is_reviewed(flow_at):
    flow_at("1")
    gate(TYPE, 0.2)
    flow_at("2")
    gate(TYPE, 0.2)
    policy_update(output_type=TYPE, changes={"threshold": 0.5}, by=None, reason="version 2 earned it")
    flow_at("1")
    assert gate(TYPE, 0.99, rng=NEVER_AUDIT) == Route.HUMAN_REVIEW
    assert GateDecision.objects.latest("id").flow_version == "1"
    assert (policy().flow_version, policy().threshold) == ("2", 0.5)
    assert PolicyChange.objects.filter(changes__has_key="flow_version").count() == 1


# --------------------------------------------------------------------------- evidence per version


def test_evidence_of_one_version_does_not_count_for_the_next(flow_at):
    flow_at("1")
    gate(TYPE, 0.2)
    verdicts("1", 60)
    assert current_evidence() == 60
    flow_at("2")
    gate(TYPE, 0.2)
    assert current_evidence() == 0
    verdicts("2", 7)
    assert current_evidence() == 7
    guarded = policy()
    guarded.threshold = 0.9
    assert guard_window(guarded, since=guarded.created_at).filter(flow_version="1").count() == 0


def test_a_corrected_field_counts_for_the_version_of_its_output(flow_at):
    flow_at("1")
    gate(TYPE, 0.2)
    run = FlowRun.objects.create(flow_name="versioned")
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
    item = ReviewItem.objects.create(
        run=run, pending=pending, method="review", output_type=TYPE, outcomes=["approved", "rejected"]
    )
    GateDecision.objects.update(review_item=item)
    edit = [{"path": "total", "from": 1, "to": 2}]
    verdict_record(item=item, decision=Decision(item=item, outcome="approved", edited_output={"total": 2}, diff=edit))
    assert list(FieldError.objects.values_list("flow_version", "field")) == [("1", "total")]
    assert field_error_rates(TYPE, where=evidence_filter(["1"]))[0]["errors"] == 1
    assert field_error_rates(TYPE, where=evidence_filter(["2"])) == []


def test_carrying_evidence_over_is_logged_and_restores_the_evidence_and_the_threshold(flow_at):
    manager = user_in_role("mona", "manager")
    flow_at("1")
    gate(TYPE, 0.2)
    set_threshold(0.5)
    verdicts("1", 60)
    flow_at("2")
    gate(TYPE, 0.2)
    assert current_evidence() == 0
    change = policy_evidence_carry_over(output_type=TYPE, from_version="1", by=manager, reason="Only a comment changed")
    assert (change.by, change.automatic, change.reason) == (manager, False, "Only a comment changed")
    assert change.evidence == {"kind": "evidence_carried_over", "from_version": "1", "to_version": "2"}
    assert change.changes == {"evidence_versions": [["2"], ["2", "", "1"]], "threshold": [None, 0.5]}
    assert current_evidence() == 60
    assert gate(TYPE, 0.9, rng=NEVER_AUDIT) == Route.AUTO_APPROVED


def test_carrying_over_keeps_a_threshold_set_since_the_new_version(flow_at):
    flow_at("1")
    gate(TYPE, 0.2)
    set_threshold(0.5)
    flow_at("2")
    gate(TYPE, 0.2)
    set_threshold(0.8)
    set_threshold(None)
    change = policy_evidence_carry_over(output_type=TYPE, from_version="1", by=None, reason="same prompt")
    assert "threshold" not in change.changes and policy().threshold is None


@pytest.mark.parametrize(
    ("from_version", "reason", "field"),
    [("1", "  ", "reason"), ("3", "why not", "from_version"), ("2", "why not", "from_version")],
)
def test_carrying_over_refuses_bad_input(flow_at, from_version, reason, field):
    flow_at("1")
    gate(TYPE, 0.2)
    flow_at("2")
    gate(TYPE, 0.2)
    with pytest.raises(PolicyError) as refused:
        policy_evidence_carry_over(output_type=TYPE, from_version=from_version, by=None, reason=reason)
    assert refused.value.field == field
    assert policy().evidence_versions == ["2"]


# --------------------------------------------------------------------------- the type page and the API


@pytest.fixture
def mona() -> Client:
    return client_for(user_in_role("mona", "manager"))


def after_a_new_version(flow_at) -> None:
    flow_at("1")
    gate(TYPE, 0.2)
    set_threshold(0.5)
    verdicts("1", 12)
    flow_at("2")
    verdicts("2", 3)


def test_the_type_page_reads_the_current_version_and_can_show_another(flow_at, mona):
    after_a_new_version(flow_at)
    url = reverse("autonomy:type", args=[TYPE])
    page = mona.get(url)  # the web process sees version 2 first
    assert policy().flow_version == "2"
    assert page.context["summary"]["reviewed"] == 3
    assert page.context["version"].covers == ("2",)
    body = page.content.decode()
    assert "Carry evidence over" in body and "?window=all&amp;version=1" in body
    older = mona.get(url, {"version": "1"})
    assert older.context["summary"]["reviewed"] == 12
    assert older.context["version"].covers == ("", "1")
    assert UNRECORDED_LABEL in older.content.decode()


def test_the_page_carries_evidence_over_with_a_required_reason(flow_at, mona):
    after_a_new_version(flow_at)
    url = reverse("autonomy:type", args=[TYPE])
    mona.get(url)
    refused = mona.post(url, {"carry_over_from": "1", "carry_over_reason": ""})
    assert refused.status_code == 422
    assert refused.context["carry_over_form"].errors == {"carry_over_reason": ["This field is required."]}
    unknown = mona.post(url, {"carry_over_from": "9", "carry_over_reason": "why"})
    assert unknown.status_code == 422 and "carry_over_from" in unknown.context["carry_over_form"].errors
    assert mona.post(url, {"carry_over_from": "1", "carry_over_reason": "Same prompt, new comment"}).status_code == 302
    assert PolicyChange.objects.get(evidence__kind="evidence_carried_over").reason == "Same prompt, new comment"
    assert mona.get(url).context["summary"]["reviewed"] == 15


def test_a_reviewer_may_not_carry_evidence_over(flow_at):
    after_a_new_version(flow_at)
    rita = client_for(user_in_role("rita", "reviewer", TYPE))
    url = reverse("autonomy:type", args=[TYPE])
    assert rita.post(url, {"carry_over_from": "1", "carry_over_reason": "why"}).status_code == 403
    assert policy().evidence_versions == ["2"]


def bearer(user: User) -> Client:
    return Client(headers={"Authorization": f"Bearer {api_token_create(user=user)}"})


def test_the_api_carries_evidence_over(flow_at):
    after_a_new_version(flow_at)
    manager = bearer(user_in_role("mona", "manager"))
    url = f"/api/v1/autonomy/{TYPE}/carry-over"
    body = manager.get(f"/api/v1/autonomy/{TYPE}").json()
    assert (body["flow_version"], body["evidence_versions"], body["stats"]["reviewed"]) == ("2", ["2"], 3)
    missing = manager.post(url, {"from_version": "1"}, content_type="application/json")
    assert missing.status_code == 422 and missing.json()["detail"][0]["loc"][-1] == "reason"
    unknown = manager.post(url, {"from_version": "7", "reason": "why"}, content_type="application/json")
    assert unknown.status_code == 422 and unknown.json()["detail"][0]["loc"] == ["body", "from_version"]
    reviewer = bearer(user_in_role("rita", "reviewer", TYPE))
    assert (
        reviewer.post(url, {"from_version": "1", "reason": "why"}, content_type="application/json").status_code == 403
    )
    done = manager.post(url, {"from_version": "1", "reason": "Same prompt"}, content_type="application/json")
    assert done.status_code == 200
    body = done.json()
    assert (body["evidence_versions"], body["threshold"], body["stats"]["reviewed"]) == (["2", "", "1"], 0.5, 15)
    assert body["history"][0]["reason"] == "Same prompt"


@pytest.mark.django_db(transaction=True)
def test_a_run_records_its_flow_version_and_model_and_the_item_page_shows_the_version():
    item = paused_item("decorated_review")
    decision = GateDecision.objects.get(review_item=item)
    # Three test flows declare the type: its version names all three.
    assert decision.flow_version == output_type_version(item.output_type) != ""
    assert decision.model == configured_model_id() == "demo"
    page = client_for(user_in_role("rita", "reviewer")).get(reverse("reviews:item", args=[item.id]))
    assert f">{decision.flow_version}</dd>" in page.content.decode()
