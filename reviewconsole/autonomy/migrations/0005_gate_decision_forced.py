"""Gate decisions record whether a rule forced the review; both rollups group by it, `n_eligible` goes.

Backfill. Before this field the statistics told a forced review by its reason: any reason but the gate's own
(below, frozen here as the code had them) was a rule's. The same test marks the existing decisions.

Rollups. Their rows have no `forced` to split by, so they are cleared and `RollupState.rolled_through` reset:
every figure is then read live from the gate decisions (exact, only slower) until the next refresh rebuilds
the rollups from scratch (`rolled_through` None means a rebuild). Recomputing them here instead would copy the
refresh's SQL into the migration, frozen in time, and would have to race verdicts committing meanwhile. With
the reset there is nothing to race: a verdict committing during or after the migration is read live (nothing
is rolled up), and the rebuild takes the state row's lock, deletes only the stale marks it read and rolls up
every day, as any refresh does. The state row is locked here too, so a refresh running under the old code
finishes before its rows are cleared. Stale marks are left as they are: a rebuild recomputes every day anyway.
"""

from django.db import migrations, models

# The reasons the gate gives its own routing, when this migration was written.
GATE_REASONS = ["", "low_confidence", "audit_sample", "always_review"]


def mark_forced(apps, schema_editor):
    gate_decision = apps.get_model("autonomy", "GateDecision")
    gate_decision.objects.exclude(reason__in=GATE_REASONS).update(forced=True)


def clear_rollups(apps, schema_editor):
    state_model = apps.get_model("autonomy", "RollupState")
    state = state_model.objects.select_for_update().filter(pk=1).first()
    for name in ("GateRollup", "GateBucketRollup"):
        apps.get_model("autonomy", name).objects.all().delete()
    if state is not None:
        state.rolled_through = None
        state.save(update_fields=["rolled_through"])


class Migration(migrations.Migration):
    dependencies = [("autonomy", "0004_rollup_schedule")]

    operations = [
        migrations.AddField(model_name="gatedecision", name="forced", field=models.BooleanField(default=False)),
        migrations.RunPython(mark_forced, migrations.RunPython.noop),
        migrations.AddField(
            model_name="gaterollup", name="forced", field=models.BooleanField(default=False), preserve_default=False
        ),
        migrations.AddField(
            model_name="gatebucketrollup",
            name="forced",
            field=models.BooleanField(default=False),
            preserve_default=False,
        ),
        migrations.RemoveField(model_name="gatebucketrollup", name="n_eligible"),
        # Runs last both ways: backwards it empties the tables before `n_eligible` (no default) is added back.
        migrations.RunPython(clear_rollups, clear_rollups),
    ]
