"""Queueing django-q2 tasks from services, once the transaction that asked for them has committed."""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction


@functools.cache
def _broker() -> Any:
    # One per process: `async_task` would build a broker for every task, and with Redis open a connection
    # each time. The Redis client's pool reconnects by itself in a forked worker.
    from django_q.brokers import get_broker

    return get_broker()


def enqueue_on_commit(task: str, *args: str) -> None:
    """Queue `task(*args)` when the current transaction commits (at once outside one); nothing on rollback."""
    # Looked up at each call, so tests and benchmarks can replace `django_q.tasks.async_task`.
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(task, *args, group=task.rsplit(".", 1)[-1], broker=_broker()))
