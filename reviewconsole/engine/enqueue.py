"""Queueing django-q2 tasks from services, once the transaction that asked for them has committed."""

from __future__ import annotations

import functools
from typing import Any

from django.db import transaction


@functools.cache
def _broker(first: bool = False) -> Any:
    # One per process: `async_task` would build a broker for every task, and with Redis open a connection
    # each time. The Redis client's pool reconnects by itself in a forked worker.
    from django_q.brokers import get_broker

    broker = get_broker()
    # The settings' brokers (engine/brokers.py) serve a second queue before their own.
    return broker.first() if first and hasattr(broker, "first") else broker


def queue_size(*, first: bool = False) -> int:
    """How many tasks wait in the broker's queue (or its first-served one), not counting those a cluster holds."""
    return _broker(first).queue_size()


def enqueue_on_commit(task: str, *args: str, first: bool = False) -> None:
    """Queue `task(*args)` when the current transaction commits (at once outside one); nothing on rollback.

    `first` puts it on the queue workers serve first, ahead of every task on the other.
    """
    # Looked up at each call, so tests and benchmarks can replace `django_q.tasks.async_task`.
    from django_q.tasks import async_task

    transaction.on_commit(lambda: async_task(task, *args, group=task.rsplit(".", 1)[-1], broker=_broker(first)))
