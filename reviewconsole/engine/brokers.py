"""django-q2 brokers with a second queue served first, so that a reviewer's decision goes ahead of new runs.

A cluster reads the queue named after it. These brokers also read `<that queue>.first`, and always take its
tasks before the others: `resume_flow` is queued there (`enqueue_on_commit(..., first=True)`), so a resume
waits for the tasks a worker already holds, never for a backlog of `run_flow`. Both queues are served oldest
first, which is also what the sweeper assumes when it looks for tasks lost with a worker cluster
(`engine.services.runs_with_lost_task`). `settings.Q_CLUSTER["broker_class"]` names the one in use.
"""

from __future__ import annotations

import copy
from time import sleep
from typing import Any, Self

from django.db.models import Case, Value, When
from django.utils import timezone
from django_q.brokers import orm, redis_broker
from django_q.conf import Conf

FIRST_SUFFIX = ".first"


class _FirstServed:
    list_key: str

    @property
    def first_key(self) -> str:
        """The key of the queue this broker serves before its own."""
        return self.list_key + FIRST_SUFFIX

    def first(self) -> Self:
        """A broker that queues onto the first-served queue (for `async_task(..., broker=...)`)."""
        broker = copy.copy(self)
        broker.list_key = self.first_key
        return broker


class ORM(_FirstServed, orm.ORM):
    def dequeue(self) -> list[tuple[Any, str]] | None:
        waiting = self.get_connection().filter(key__in=[self.first_key, self.list_key], lock__lt=timezone.now())
        first_served = Case(When(key=self.first_key, then=Value(0)), default=Value(1))
        taken = [
            (task.pk, task.payload)
            for task in waiting.order_by(first_served, "id")[: Conf.BULK]
            # As upstream: the lock is a conditional update, since another cluster may have read the same row.
            if self.get_connection().filter(id=task.id, lock=task.lock).update(lock=self.timeout(task))
        ]
        if taken:
            return taken
        sleep(Conf.POLL)  # nothing to do: spare the database, as upstream
        return None


class Redis(_FirstServed, redis_broker.Redis):
    def dequeue(self) -> list[tuple[None, bytes]] | None:
        # BLPOP pops from the first of its lists that holds anything.
        task = self.connection.blpop([self.first_key, self.list_key], 1)
        return [(None, task[1])] if task else None
