from django.db import migrations

EXPIRER = "reviewconsole.reviews.tasks.expire_overdue_items"


def add_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.get_or_create(
        func=EXPIRER,
        defaults={"name": "Expire overdue review items", "schedule_type": "I", "minutes": 1, "repeats": -1},
    )


def remove_schedule(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=EXPIRER).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0002_reviewerscope_reviewevent_alter_reviewitem_options_and_more"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_schedule, remove_schedule)]
