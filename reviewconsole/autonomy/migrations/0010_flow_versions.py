"""Gate decisions record the flow version and the model; policies the version their evidence is about.

Backfill. Decisions made before this migration get the empty version, "unknown": nobody recorded which version
of the flow produced them, and it cannot be worked out now (the source then is gone). They are data from before
versions were recorded, and for the type's policy they are evidence of the version it sees first: every policy
starts with `evidence_versions == [""]`, and the first version the gate or a page sees for the type is recorded
beside "" without resetting anything (`services.policy_version_observe`). So the thresholds set on that data
keep their evidence across the upgrade; only a later version starts again at full review. The rollups and the
field errors get the same empty version on their rows: still the exact copies of the backfilled decisions, so
no rebuild is needed.
"""

import reviewconsole.autonomy.models
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('autonomy', '0009_evidence_hygiene'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='fielderror',
            name='field_error_type_created_idx',
        ),
        migrations.AddField(
            model_name='autonomypolicy',
            name='evidence_versions',
            field=models.JSONField(blank=True, default=reviewconsole.autonomy.models.default_evidence_versions),
        ),
        migrations.AddField(
            model_name='autonomypolicy',
            name='flow_version',
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name='fielderror',
            name='flow_version',
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name='gatebucketrollup',
            name='flow_version',
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name='gatedecision',
            name='flow_version',
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddField(
            model_name='gatedecision',
            name='model',
            field=models.CharField(blank=True, max_length=200),
        ),
        migrations.AddField(
            model_name='gaterollup',
            name='flow_version',
            field=models.CharField(blank=True, max_length=40),
        ),
        migrations.AddIndex(
            model_name='fielderror',
            index=models.Index(fields=['output_type', 'created_at'], include=('field', 'gate_decision', 'flow_version'), name='field_error_type_created_idx'),
        ),
    ]
