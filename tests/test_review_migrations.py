"""Data migrations of the reviews app, run against rows written before them."""

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
