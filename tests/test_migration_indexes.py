"""Index migrations do not block writes: new ones build and drop indexes concurrently on PostgreSQL.

A plain CREATE INDEX locks a table against writes while it builds; on the runs, steps or review items of a
deployment that is minutes without decisions. Every migration after the baseline below must use
`reviewconsole.db_operations.AddIndexConcurrently` / `RemoveIndexConcurrently` (in a migration with
`atomic = False`) for a table that already exists. A table created in the same migration is empty, so its
indexes (in `CreateModel`'s `Meta.indexes` or added after it) may be built plainly.
"""

from typing import Any

import pytest
from django.db import connection, migrations, models
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.state import ProjectState
from django.test.utils import CaptureQueriesContext

from reviewconsole.db_operations import AddIndexConcurrently, RemoveIndexConcurrently

# The latest migration of each app when concurrent index builds became the rule; later ones are checked.
BASELINE = {"reviews": 18, "autonomy": 10, "engine": 5}
USE = (
    "use reviewconsole.db_operations.AddIndexConcurrently / RemoveIndexConcurrently in a migration with "
    "atomic = False (see README, Upgrading)"
)


def _indexed(field: models.Field) -> bool:
    return bool(field.db_index or field.unique) and not field.primary_key


def blocking_index_operations(migration: migrations.Migration) -> list[str]:
    """What in `migration` builds or drops an index on an existing table without CONCURRENTLY, and why."""
    label = f"{migration.app_label}.{migration.name}"
    created = {op.name_lower for op in migration.operations if isinstance(op, migrations.CreateModel)}
    problems = []
    for op in migration.operations:
        model = getattr(op, "model_name_lower", None) or getattr(op, "model_name", "").lower()
        if model in created:
            continue
        if isinstance(op, AddIndexConcurrently | RemoveIndexConcurrently):
            if migration.atomic:
                problems.append(f"{label}: {type(op).__name__} needs `atomic = False` on the migration")
        elif isinstance(op, migrations.AddIndex | migrations.RemoveIndex):
            problems.append(f"{label}: {type(op).__name__} on {model} locks the table against writes; {USE}")
        elif isinstance(op, migrations.AddField | migrations.AlterField) and _indexed(op.field):
            problems.append(
                f"{label}: {type(op).__name__} {model}.{op.name} builds an index (db_index/unique/ForeignKey) "
                f"that locks the table; declare the field with db_index=False and add the index separately: {USE}"
            )
    return problems


def _new_migrations() -> list[migrations.Migration]:
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return [
        migration
        for (app, name), migration in sorted(loader.disk_migrations.items())
        if app in BASELINE and int(name.split("_", 1)[0]) > BASELINE[app]
    ]


def test_new_migrations_build_indexes_concurrently():
    problems = [problem for migration in _new_migrations() for problem in blocking_index_operations(migration)]
    assert not problems, "\n".join(problems)


def _migration(*operations: Any, atomic: bool = True) -> migrations.Migration:
    migration = migrations.Migration("0099_example", "engine")
    migration.operations = list(operations)
    migration.atomic = atomic
    return migration


def test_the_check_names_the_migration_and_what_to_use():
    index = models.Index(fields=["trigger"], name="run_trigger_idx")
    plain = blocking_index_operations(_migration(migrations.AddIndex("flowrun", index)))
    assert plain == [f"engine.0099_example: AddIndex on flowrun locks the table against writes; {USE}"]
    field = blocking_index_operations(_migration(migrations.AddField("step", "note", models.SlugField())))
    assert "AddField step.note builds an index" in field[0]
    atomic = blocking_index_operations(_migration(AddIndexConcurrently("flowrun", index)))
    assert atomic == ["engine.0099_example: AddIndexConcurrently needs `atomic = False` on the migration"]
    assert blocking_index_operations(_migration(AddIndexConcurrently("flowrun", index), atomic=False)) == []
    # A table the migration creates is empty: its indexes cost nothing.
    fields = [("id", models.AutoField(primary_key=True)), ("label", models.SlugField())]
    new_table = _migration(
        migrations.CreateModel("Fresh", fields, options={"indexes": [index]}), migrations.AddIndex("fresh", index)
    )
    assert blocking_index_operations(new_table) == []


def _index_sql(operation: Any, state: ProjectState) -> tuple[list[str], ProjectState]:
    """Apply `operation` to the test database outside a transaction; the SQL it ran and the state after it."""
    after = state.clone()
    operation.state_forwards("engine", after)
    with CaptureQueriesContext(connection) as queries, connection.schema_editor(atomic=False) as editor:
        operation.database_forwards("engine", editor, state, after)
    return [query["sql"] for query in queries.captured_queries], after


def _indexes_of_runs() -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.get_constraints(cursor, "engine_flowrun"))


@pytest.mark.django_db(transaction=True)
def test_the_operations_build_and_drop_concurrently_on_postgresql_and_plainly_elsewhere():
    state = MigrationLoader(connection).project_state()
    index = models.Index(fields=["trigger"], name="test_run_trigger_idx")

    added, state = _index_sql(AddIndexConcurrently("flowrun", index), state)
    assert "test_run_trigger_idx" in _indexes_of_runs()
    dropped, _ = _index_sql(RemoveIndexConcurrently("flowrun", "test_run_trigger_idx"), state)
    assert "test_run_trigger_idx" not in _indexes_of_runs()

    create = next(sql for sql in added if "test_run_trigger_idx" in sql)
    drop = next(sql for sql in dropped if "test_run_trigger_idx" in sql)
    if connection.vendor == "postgresql":
        assert create.startswith("CREATE INDEX CONCURRENTLY")
        assert drop.startswith("DROP INDEX CONCURRENTLY")
    else:
        assert create.startswith("CREATE INDEX") and "CONCURRENTLY" not in create
        assert drop.startswith("DROP INDEX") and "CONCURRENTLY" not in drop
