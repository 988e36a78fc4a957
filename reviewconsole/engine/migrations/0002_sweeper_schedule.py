from django.db import migrations

SWEEPER = "reviewconsole.engine.tasks.sweep_expired_runs"


def add_schedule(apps, schema_editor):
    schedule = apps.get_model("django_q", "Schedule")
    schedule.objects.get_or_create(
        func=SWEEPER,
        defaults={"name": "Requeue runs whose worker died", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=SWEEPER).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("engine", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
