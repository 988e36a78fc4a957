"""Liveness and readiness for a load balancer or an orchestrator: /healthz and /readyz.

Both are public: they name the parts and whether each works, never an address, an error text or a version.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from django_q.models import OrmQ

from reviewconsole.engine.selectors import newest_worker_heartbeat

logger = logging.getLogger(__name__)

# A readiness probe must answer before the prober gives up (often 1 to 5 s): a broker that does not answer
# within this is as good as down.
BROKER_TIMEOUT_SECONDS = 2.0


class NotReadyError(Exception):
    """A part is not ready; the message says so in words safe to show anyone."""


def check_database() -> dict[str, Any]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return {}


def check_broker() -> dict[str, Any]:
    """Redis answers a PING when it is the broker; else the ORM broker's table can be read."""
    if settings.REDIS_URL:
        client = redis.Redis.from_url(
            settings.REDIS_URL, socket_connect_timeout=BROKER_TIMEOUT_SECONDS, socket_timeout=BROKER_TIMEOUT_SECONDS
        )
        try:
            client.ping()
        finally:
            client.close()
        return {"kind": "redis"}
    OrmQ.objects.order_by().values_list("id")[:1].exists()
    return {"kind": "database"}


def check_worker() -> dict[str, Any]:
    """A qcluster worker wrote its heartbeat within WORKER_HEARTBEAT_SECONDS."""
    newest = newest_worker_heartbeat()
    if newest is None:
        raise NotReadyError("no worker has reported")
    age = max(0.0, (timezone.now() - newest).total_seconds())
    if age > settings.WORKER_HEARTBEAT_SECONDS:
        raise NotReadyError(f"no worker has reported for {age:.0f}s")
    return {"heartbeat_age_seconds": round(age, 1)}


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": check_database,
    "broker": check_broker,
    "worker": check_worker,
}


def readiness() -> tuple[bool, dict[str, dict[str, Any]]]:
    """Every check's outcome by name, and whether all passed; a failure is logged with its cause."""
    parts: dict[str, dict[str, Any]] = {}
    for name, check in CHECKS.items():
        try:
            parts[name] = {"ok": True, **check()}
        except NotReadyError as error:
            parts[name] = {"ok": False, "error": str(error)}
        except Exception:
            # The cause (an address, a password in a URL) stays in the server's log.
            logger.warning("readiness: %s unavailable", name, exc_info=True)
            parts[name] = {"ok": False, "error": "unavailable"}
            if name == "database":
                # A broken connection would otherwise fail the next request that uses it too.
                connection.close()
    return all(part["ok"] for part in parts.values()), parts


@require_safe
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers requests. Touches nothing else, so a database outage does not get every
    web process restarted."""
    return JsonResponse({"status": "ok"})


@require_safe
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: the database, the broker and at least one worker work; 503 naming what does not."""
    ready, parts = readiness()
    failing = [name for name, part in parts.items() if not part["ok"]]
    body = {"status": "ready" if ready else "not ready", "failing": failing, "checks": parts}
    return JsonResponse(body, status=200 if ready else 503)
