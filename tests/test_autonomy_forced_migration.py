"""The migration that adds `GateDecision.forced`: existing decisions are marked by their reason, and the rollups
are cleared so that every figure is read live until the next refresh rebuilds them with the forced split."""

import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone

from reviewconsole.autonomy.models import GateBucketRollup, GateDecision, GateRollup, RollupState, Route
from reviewconsole.autonomy.rollup import coverage
from reviewconsole.autonomy.services import rollup_refresh

pytestmark = pytest.mark.django_db

migration = importlib.import_module("reviewconsole.autonomy.migrations.0005_gate_decision_forced")

REASONS = {
    "": False,
    "low_confidence": False,
    "audit_sample": False,
    "always_review": False,
    "high_value": True,
    "flow_requested": True,
    "unreadable": True,
}


def test_existing_decisions_are_forced_unless_the_gate_gave_the_reason():
    GateDecision.objects.bulk_create(
        GateDecision(output_type="invoice", confidence=0.9, route=Route.HUMAN_REVIEW, reason=reason)
        for reason in REASONS
    )
    migration.mark_forced(apps, None)
    assert dict(GateDecision.objects.values_list("reason", "forced")) == REASONS


def test_the_rollups_are_cleared_and_rebuilt_by_the_next_refresh():
    GateDecision.objects.bulk_create(
        GateDecision(output_type="invoice", confidence=0.9, route=Route.HUMAN_REVIEW, reason=reason)
        for reason in REASONS
    )
    GateDecision.objects.update(created_at=timezone.now() - timedelta(days=2))
    rollup_refresh()
    assert GateRollup.objects.exists() and GateBucketRollup.objects.exists()
    migration.clear_rollups(apps, None)
    assert not GateRollup.objects.exists() and not GateBucketRollup.objects.exists()
    assert RollupState.objects.get().rolled_through is None
    assert coverage().rolled is None  # read live meanwhile
    assert rollup_refresh()["rebuilt"]
    assert GateBucketRollup.objects.exists()


def test_clearing_rollups_that_were_never_built_creates_no_state():
    migration.clear_rollups(apps, None)
    assert not RollupState.objects.exists()
