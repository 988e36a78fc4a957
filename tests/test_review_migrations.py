"""Data migrations of the reviews app, run against rows written before them."""

from datetime import UTC, datetime, timedelta
from importlib import import_module

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE_COUNTS = [("reviews", "0006_decided_type_index")]
WITH_COUNTS = [("reviews", "0007_pending_counts")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_pending_counts_start_from_the_items_already_pending():
    apps = _migrate(BEFORE_COUNTS)
    try:
        FlowRun = apps.get_model("engine", "FlowRun")
        PendingFeedback = apps.get_model("engine", "PendingFeedback")
        ReviewItem = apps.get_model("reviews", "ReviewItem")
        for output_type, status in [
            ("invoice", "pending"),
            ("invoice", "pending"),
            ("invoice", "decided"),
            ("draft", "pending"),
            ("lead", "expired"),
        ]:
            run = FlowRun.objects.create(flow_name="counter")
            pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
            ReviewItem.objects.create(run=run, pending=pending, method="review", output_type=output_type, status=status)

        apps = _migrate(WITH_COUNTS)

        counts = dict(apps.get_model("reviews", "PendingCount").objects.values_list("output_type", "pending"))
        assert counts == {"invoice": 2, "draft": 1}
        schedules = apps.get_model("django_q", "Schedule").objects.filter(
            func="reviewconsole.reviews.tasks.recount_pending"
        )
        assert schedules.get().schedule_type == "H"
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())


BEFORE_COPIES = [("reviews", "0010_decided_and_decision_time_indexes")]
WITH_COPIES = [("reviews", "0013_decision_item_copies_required")]


@pytest.mark.django_db(transaction=True)
def test_decisions_made_before_get_their_items_type_and_creation_time(monkeypatch):
    backfill = import_module("reviewconsole.reviews.migrations.0012_decision_item_copies_backfill")
    # Batches of two: the loop over id ranges, not one statement, fills every row.
    monkeypatch.setattr(backfill, "BATCH", 2)
    apps = _migrate(BEFORE_COPIES)
    try:
        FlowRun = apps.get_model("engine", "FlowRun")
        PendingFeedback = apps.get_model("engine", "PendingFeedback")
        ReviewItem = apps.get_model("reviews", "ReviewItem")
        Decision = apps.get_model("reviews", "Decision")
        created = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
        expected = {}
        for index, (output_type, edited) in enumerate(
            [("invoice", None), ("draft", {"title": "x"}), ("invoice", None), ("lead", None), ("draft", None)]
        ):
            run = FlowRun.objects.create(flow_name="counter")
            pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
            item = ReviewItem.objects.create(
                run=run, pending=pending, method="review", output_type=output_type, status="decided"
            )
            ReviewItem.objects.filter(id=item.id).update(created_at=created + timedelta(hours=index))
            decision = Decision.objects.create(item=item, outcome="approved", edited_output=edited)
            expected[decision.id] = (output_type, created + timedelta(hours=index), edited is not None)

        apps = _migrate(WITH_COPIES)

        rows = apps.get_model("reviews", "Decision").objects.values_list(
            "id", "output_type", "item_created_at", "edited"
        )
        assert {pk: (t, at, edited) for pk, t, at, edited in rows} == expected
    finally:
        _migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
