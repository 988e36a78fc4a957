import os
from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db import connections


class EngineConfig(AppConfig):
    name = "reviewconsole.engine"
    label = "engine"
    verbose_name = "Flow engine"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        checks.register(check_registered_flows, "flows")
        os.register_at_fork(after_in_child=forget_inherited_connection_pools)
        post_spawn.connect(worker_spawned, dispatch_uid="engine.worker_spawned")


def forget_inherited_connection_pools() -> None:
    """In a forked process (a django-q2 worker), start without the parent's connection pools.

    A pool's idle connections are sockets the parent still uses, and its maintenance threads did not survive
    the fork; the child's first query makes a pool of its own. The inherited objects are dropped, not
    closed: closing would end the parent's sessions (psycopg leaves a connection alone when collected in
    another process).
    """
    for connection in connections.all():
        pools = getattr(type(connection), "_connection_pools", None)
        if pools:
            pools.clear()


def worker_spawned(**kwargs: Any) -> None:
    """django-q2 started a worker process: it sweeps for lost runs from then on, busy or idle."""
    from django_q.conf import Conf

    if Conf.SYNC:
        return  # a task run inline, in a web or test process, which is no worker
    # Imported here: the runner brings CrewAI, which only workers need.
    from reviewconsole.engine.runner import start_sweeping

    start_sweeping()


def check_registered_flows(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Warn at `manage.py check`, runserver and qcluster start-up of each flow module or flow that cannot load.

    A warning, not an error: the other flows still run, and the Flows page lists the broken one with its error.
    """
    from reviewconsole.engine.registry import load_failures

    return [
        checks.Warning(
            f"{failure.module}: {failure.error}", hint="Its flows cannot run; the others can.", id="engine.W001"
        )
        for failure in load_failures()
    ]
