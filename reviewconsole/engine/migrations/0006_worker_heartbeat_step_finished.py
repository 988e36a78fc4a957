from django.db import migrations, models

from reviewconsole.db_operations import AddIndexConcurrently


class Migration(migrations.Migration):
    # The step index is built concurrently on PostgreSQL, which cannot happen inside a transaction.
    atomic = False

    dependencies = [
        ("engine", "0005_checkpoint_value_types"),
    ]

    operations = [
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("worker", models.CharField(max_length=200, primary_key=True, serialize=False)),
                ("beat_at", models.DateTimeField()),
            ],
            options={
                "indexes": [models.Index(fields=["beat_at"], name="worker_heartbeat_beat_idx")],
            },
        ),
        AddIndexConcurrently(
            model_name="step",
            index=models.Index(fields=["finished_at"], name="step_finished_idx"),
        ),
    ]
