from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reviews", "0008_open_review_reason"),
    ]

    operations = [
        migrations.AlterField(
            model_name="reviewevent",
            name="kind",
            field=models.CharField(
                choices=[
                    ("created", "Created"),
                    ("claimed", "Opened and claimed"),
                    ("released", "Claim released"),
                    ("decided", "Decided"),
                    ("expired", "Expired"),
                    ("cancelled", "Cancelled"),
                    ("reopened", "Reopened by a retry of its run"),
                    ("notified", "Notification sent"),
                ],
                max_length=20,
            ),
        ),
    ]
