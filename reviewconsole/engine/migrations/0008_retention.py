from django.db import migrations, models

from reviewconsole.db_operations import AddIndexConcurrently

PURGE = "reviewconsole.engine.tasks.purge_expired_runs"


def add_schedule(apps, schema_editor):
    # Hourly, so a purge after a long pause works through its backlog in bounded steps; with RETENTION_DAYS
    # unset the task returns at once.
    apps.get_model("django_q", "Schedule").objects.get_or_create(
        func=PURGE,
        defaults={"name": "Remove run data older than RETENTION_DAYS", "schedule_type": "H", "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=PURGE).delete()


class Migration(migrations.Migration):
    # The index is built concurrently on PostgreSQL, which cannot happen inside a transaction.
    atomic = False

    dependencies = [
        ("engine", "0007_run_document"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [
        migrations.AddField(
            model_name="flowrun",
            name="purged_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        AddIndexConcurrently(
            model_name="flowrun",
            index=models.Index(
                condition=models.Q(("finished_at__isnull", False), ("purged_at__isnull", True)),
                fields=["finished_at"],
                name="run_unpurged_finished_idx",
            ),
        ),
        migrations.RunPython(add_schedule, remove_schedule),
    ]
