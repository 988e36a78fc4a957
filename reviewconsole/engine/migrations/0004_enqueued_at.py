from django.db import migrations, models
from django.db.models.functions import Now

SWEEPER = "reviewconsole.engine.tasks.sweep_expired_runs"


def stamp_outstanding_tasks(apps, schema_editor):
    # Runs that wait on a task now count it as just handed out: the sweeper queues it again if no worker
    # takes it up within a lease.
    run = apps.get_model("engine", "FlowRun")
    item = apps.get_model("reviews", "ReviewItem")
    run.objects.filter(status="queued").update(enqueued_at=Now())
    decided = item.objects.filter(status__in=["decided", "expired"], resumed_at__isnull=True).values("run_id")
    run.objects.filter(status="waiting_review", id__in=decided).update(enqueued_at=Now())


def remove_schedule(apps, schema_editor):
    # Every worker sweeps from its heartbeat thread, at an interval that follows the lease.
    apps.get_model("django_q", "Schedule").objects.filter(func=SWEEPER).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("engine", "0003_apitoken_expires_at"),
        ("reviews", "0007_pending_counts"),
    ]

    operations = [
        migrations.AddField(
            model_name="flowrun",
            name="enqueued_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="flowrun",
            index=models.Index(
                condition=models.Q(("enqueued_at__isnull", False)),
                fields=["status", "enqueued_at"],
                name="run_status_enqueued_idx",
            ),
        ),
        migrations.RunPython(stamp_outstanding_tasks, migrations.RunPython.noop),
        # No way back: the task the minute schedule ran is gone.
        migrations.RunPython(remove_schedule, migrations.RunPython.noop),
    ]
