from django.db import migrations, models


class Migration(migrations.Migration):
    """The copies filled (0012), they are required; reviewer throughput reads covering indexes over them."""

    dependencies = [
        ("reviews", "0012_decision_item_copies_backfill"),
    ]

    operations = [
        migrations.AlterField(
            model_name="decision",
            name="output_type",
            field=models.CharField(editable=False, max_length=100),
        ),
        migrations.AlterField(
            model_name="decision",
            name="item_created_at",
            field=models.DateTimeField(editable=False),
        ),
        migrations.RemoveIndex(
            model_name="decision",
            name="decision_at_idx",
        ),
        migrations.AddIndex(
            model_name="decision",
            index=models.Index(
                condition=models.Q(("user__isnull", False)),
                fields=["output_type", "at"],
                include=("user", "item_created_at", "outcome", "edited"),
                name="decision_type_at_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="decision",
            index=models.Index(
                condition=models.Q(("user__isnull", False)),
                fields=["at"],
                include=("user", "item_created_at", "outcome", "edited"),
                name="decision_reviewer_at_idx",
            ),
        ),
    ]
