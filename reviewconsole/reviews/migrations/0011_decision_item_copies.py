from django.db import migrations, models


class Migration(migrations.Migration):
    """Decision gets copies of its item's type and creation time (nullable until 0012 fills them) and `edited`."""

    dependencies = [
        ("reviews", "0010_decided_and_decision_time_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="decision",
            name="output_type",
            field=models.CharField(editable=False, max_length=100, null=True),
        ),
        migrations.AddField(
            model_name="decision",
            name="item_created_at",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.AddField(
            model_name="decision",
            name="edited",
            field=models.GeneratedField(
                db_persist=True,
                expression=models.Q(("edited_output__isnull", False)),
                output_field=models.BooleanField(),
            ),
        ),
    ]
