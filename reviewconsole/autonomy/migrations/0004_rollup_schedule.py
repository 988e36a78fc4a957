from django.db import migrations

REFRESH = "reviewconsole.autonomy.tasks.refresh_rollups"


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.get_or_create(
        func=REFRESH,
        defaults={"name": "Refresh the autonomy rollups", "schedule_type": "H", "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=REFRESH).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("autonomy", "0003_gate_rollups"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
