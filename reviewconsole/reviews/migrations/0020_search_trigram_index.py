from django.db import migrations

# The queue's search (`search_text LIKE '%word%'`, one per word) on PostgreSQL: a trigram index finds the
# matching rows without reading every item's text. PostgreSQL only (SQLite has no such index; it scans), so
# the model's Meta cannot list it. pg_trgm is a trusted extension: a database owner may create it. Built
# concurrently, so an upgrade does not block decisions (hence atomic = False).
CREATE_EXTENSION = "CREATE EXTENSION IF NOT EXISTS pg_trgm"
CREATE_INDEX = (
    'CREATE INDEX CONCURRENTLY IF NOT EXISTS "review_search_trgm_idx" ON "reviews_reviewitem" '
    'USING gin ("search_text" gin_trgm_ops)'
)
DROP_INDEX = 'DROP INDEX CONCURRENTLY IF EXISTS "review_search_trgm_idx"'


def _on_postgresql(*statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)

    return run


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("reviews", "0019_item_summary_search_preferences"),
    ]

    operations = [
        migrations.RunPython(_on_postgresql(CREATE_EXTENSION, CREATE_INDEX), _on_postgresql(DROP_INDEX)),
    ]
