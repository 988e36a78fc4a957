from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("engine", "0004_enqueued_at"),
    ]

    operations = [
        # Null on the rows already there: they replay their output as JSON, as before.
        migrations.AddField(
            model_name="checkpoint",
            name="value_types",
            field=models.JSONField(blank=True, null=True),
        ),
    ]
