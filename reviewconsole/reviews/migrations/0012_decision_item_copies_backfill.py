from django.db import migrations, transaction
from django.db.models import OuterRef, Subquery

# Decisions updated per transaction: short locks and bounded work per statement on a table of millions.
BATCH = 10_000


def backfill(apps, schema_editor):
    """Copy each decision's item type and creation time onto it, a range of ids per transaction.

    Not atomic as a whole, and only rows still empty are touched: a run stopped halfway resumes where it was.
    """
    Decision = apps.get_model("reviews", "Decision")
    ReviewItem = apps.get_model("reviews", "ReviewItem")
    item = ReviewItem.objects.filter(id=OuterRef("item_id"))
    empty = Decision.objects.using(schema_editor.connection.alias).filter(item_created_at__isnull=True)
    last = empty.order_by("-id").values_list("id", flat=True).first()
    start = empty.order_by("id").values_list("id", flat=True).first()
    while start is not None and start <= last:
        with transaction.atomic(using=schema_editor.connection.alias):
            empty.filter(id__gte=start, id__lt=start + BATCH).update(
                output_type=Subquery(item.values("output_type")[:1]),
                item_created_at=Subquery(item.values("created_at")[:1]),
            )
        start += BATCH


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("reviews", "0011_decision_item_copies"),
    ]

    operations = [
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
