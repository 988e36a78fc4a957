"""Retention: RETENTION_DAYS removes old runs' inputs, state, output and files; decisions and figures stay."""

import logging
from datetime import timedelta
from io import StringIO

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from flows.invoice_samples import sample_invoices
from flows.invoices import OUTPUT_TYPE
from reviewconsole.autonomy.models import GateDecision
from reviewconsole.engine.models import Checkpoint, FlowRun, PendingFeedback, RunStatus
from reviewconsole.engine.services import RunStateError, run_create, run_retry, runs_purge_expired
from reviewconsole.engine.tasks import purge_expired_runs
from reviewconsole.reviews.models import Decision, ReviewItem
from reviewconsole.reviews.services import decide
from tests.people import client_for, user_in_role
from tests.settings_env import settings_under

# Runs go to review and resume through on-commit hooks, and a purge deletes files once its batch commits.
pytestmark = pytest.mark.django_db(transaction=True)

DAYS = 30
# The type page's figures: what a manager reads to lower or raise the threshold.
FIGURES = ("summary", "bands", "rec", "evidence", "calibration_chart", "recommendation_chart")


@pytest.fixture
def manager():
    return user_in_role("mona", "manager")


def _decided_invoices(manager, count: int) -> list[FlowRun]:
    """`count` invoice runs taken to review and decided (approved, edited, rejected in turn): completed runs."""
    runs = []
    for number, sample in enumerate(sample_invoices(count, seed=11)):
        run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": sample.text})
        run.refresh_from_db()
        assert run.status == RunStatus.WAITING_REVIEW, (run.status, run.error)
        item = ReviewItem.objects.get(run=run)
        if number % 3 == 2:
            decide(item_id=item.id, user=manager, outcome="rejected", reason_code=_reason())
        elif number % 3 == 1:
            decide(item_id=item.id, user=manager, outcome="approved", edited_output={**item.output, "vendor": "Fixed"})
        else:
            decide(item_id=item.id, user=manager, outcome="approved")
        run.refresh_from_db()
        assert run.status == RunStatus.COMPLETED, run.error
        runs.append(run)
    return runs


def _reason() -> str:
    from reviewconsole.autonomy.services import policy_ensure

    return policy_ensure(output_type=OUTPUT_TYPE).reject_reasons[0]


def _age(runs: list[FlowRun], days: int) -> None:
    FlowRun.objects.filter(id__in=[run.id for run in runs]).update(finished_at=timezone.now() - timedelta(days=days))


def _figures(client) -> dict:
    response = client.get(reverse("autonomy:type", args=[OUTPUT_TYPE]))
    assert response.status_code == 200
    figures = {name: response.context[name] for name in FIGURES}
    # Where the audit window starts moves with the clock between two requests; it is no figure.
    figures["summary"] = {key: value for key, value in figures["summary"].items() if key != "audits_since"}
    return {name: repr(value) for name, value in figures.items()}


def test_a_purge_removes_old_run_data_and_keeps_decisions_and_figures(manager, caplog):
    runs = _decided_invoices(manager, 6)
    old, recent = runs[:4], runs[4:]
    _age(old, DAYS + 1)
    _age(recent, DAYS - 1)
    client = client_for(manager)
    figures_before = _figures(client)
    decisions_before = list(Decision.objects.order_by("id").values())
    verdicts_before = list(GateDecision.objects.order_by("id").values())
    old_ids = [str(run.id) for run in old]

    with caplog.at_level(logging.INFO, logger="reviewconsole.engine.services"):
        removed = runs_purge_expired(days=DAYS, batch_size=3)  # two batches

    assert removed["runs"] == 4
    assert removed["review item outputs"] == 4
    assert removed["checkpoints"] > 0
    assert "retention (30 days): removed 4 runs" in caplog.text
    for run in FlowRun.objects.filter(id__in=[r.id for r in old]):
        assert (run.inputs, run.state, run.result, run.traceback) == ({}, {}, None, "")
        assert run.purged_at is not None and run.status == RunStatus.COMPLETED
    assert not Checkpoint.objects.filter(flow_uuid__in=old_ids).exists()
    pauses = PendingFeedback.objects.filter(flow_uuid__in=old_ids)
    assert pauses.count() == 4 and list(pauses.values_list("state", "context").distinct()) == [({}, {})]
    assert not ReviewItem.objects.filter(run__in=old, output__isnull=False).exists()
    # The recent runs keep everything.
    for run in FlowRun.objects.filter(id__in=[r.id for r in recent]):
        assert run.inputs and run.state and run.result and run.purged_at is None
    assert ReviewItem.objects.filter(run__in=recent, output__isnull=False).count() == 2

    # Decisions, verdicts and the figures the autonomy page shows are untouched.
    assert list(Decision.objects.order_by("id").values()) == decisions_before
    assert list(GateDecision.objects.order_by("id").values()) == verdicts_before
    assert _figures(client) == figures_before

    # A second purge finds nothing left to do.
    assert runs_purge_expired(days=DAYS) == {}


def test_purged_runs_show_that_retention_removed_their_data(manager):
    run = _decided_invoices(manager, 1)[0]
    item = ReviewItem.objects.get(run=run)
    client = client_for(manager)
    raw = run.inputs["raw_invoice"].splitlines()[0]
    assert raw in client.get(reverse("engine:run_detail", args=[run.id])).content.decode()
    _age([run], DAYS + 3)
    runs_purge_expired(days=DAYS)

    for url in (reverse("engine:run_detail", args=[run.id]), reverse("reviews:item", args=[item.id])):
        response = client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert f"removed by retention after {DAYS + 3} days" in page
        assert raw not in page


def test_a_purged_run_cannot_be_retried(manager):
    run = _decided_invoices(manager, 1)[0]
    _age([run], DAYS + 1)
    runs_purge_expired(days=DAYS)
    FlowRun.objects.filter(id=run.id).update(status=RunStatus.FAILED)
    with pytest.raises(RunStateError, match="removed by retention"):
        run_retry(run_id=run.id, actor=manager)


def test_unset_retention_keeps_everything(manager, settings):
    run = _decided_invoices(manager, 1)[0]
    _age([run], 10_000)
    settings.RETENTION_DAYS = 0
    assert purge_expired_runs() == {}
    run.refresh_from_db()
    assert run.inputs and run.purged_at is None
    settings.RETENTION_DAYS = DAYS
    assert purge_expired_runs()["runs"] == 1


def test_the_command_purges_and_says_what_it_removed(manager, settings):
    run = _decided_invoices(manager, 1)[0]
    _age([run], 8)
    settings.RETENTION_DAYS = 0
    with pytest.raises(CommandError, match="RETENTION_DAYS is unset or 0"):
        call_command("purge_runs")
    out = StringIO()
    call_command("purge_runs", "--days", "7", stdout=out)
    out = out.getvalue()
    assert "Runs finished over 7 days ago: removed 1 runs" in out
    assert "1 review item outputs" in out
    run.refresh_from_db()
    assert run.purged_at is not None


@pytest.mark.parametrize("value", ["-1", "thirty", "1.5"])
def test_a_bad_retention_setting_stops_start_up(value, monkeypatch):
    with pytest.raises(
        ImproperlyConfigured, match=f"RETENTION_DAYS must be zero or a whole number above it, not '{value}'"
    ):
        settings_under(monkeypatch, DEBUG="1", RETENTION_DAYS=value)


@pytest.mark.parametrize(("value", "days"), [("", 0), ("0", 0), ("45", 45)])
def test_retention_is_off_unless_set(value, days, monkeypatch):
    assert settings_under(monkeypatch, DEBUG="1", RETENTION_DAYS=value)["RETENTION_DAYS"] == days
