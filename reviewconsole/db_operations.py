"""Migration operations that keep a live PostgreSQL database writable while they run.

A plain ``CREATE INDEX`` holds a lock that blocks every write to the table until the index is built: on a
large review table that stops decisions for minutes during an upgrade. PostgreSQL builds an index
``CONCURRENTLY`` without that lock, but only outside a transaction, so a migration using these operations
sets ``atomic = False``. Other databases get the plain operation (SQLite locks the whole file anyway).
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.postgres.operations import AddIndexConcurrently as PostgresAddIndexConcurrently
from django.contrib.postgres.operations import RemoveIndexConcurrently as PostgresRemoveIndexConcurrently
from django.db.migrations.operations import AddIndex, RemoveIndex


class _ConcurrentOnPostgreSQL:
    """Runs the PostgreSQL (concurrent) operation there, and ``plain`` on other databases."""

    plain: ClassVar[type]

    def _operation(self, schema_editor: Any) -> Any:
        return super() if schema_editor.connection.vendor == "postgresql" else _Plain(self.plain, self)

    def database_forwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self._operation(schema_editor).database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any) -> None:
        self._operation(schema_editor).database_backwards(app_label, schema_editor, from_state, to_state)


class _Plain:
    """``operation`` seen as an instance of ``plain``: its non-concurrent methods, bound to it."""

    def __init__(self, plain: type, operation: Any) -> None:
        self._plain, self._operation = plain, operation

    def __getattr__(self, name: str) -> Any:
        return getattr(self._plain, name).__get__(self._operation)


class AddIndexConcurrently(_ConcurrentOnPostgreSQL, PostgresAddIndexConcurrently):
    """``AddIndex`` built concurrently on PostgreSQL."""

    plain = AddIndex


class RemoveIndexConcurrently(_ConcurrentOnPostgreSQL, PostgresRemoveIndexConcurrently):
    """``RemoveIndex`` dropped concurrently on PostgreSQL."""

    plain = RemoveIndex
