"""/healthz (liveness) and /readyz (database, broker, worker heartbeat)."""

import socket
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from reviewconsole.engine.models import WorkerHeartbeat
from reviewconsole.engine.services import worker_heartbeat_record


def closed_port() -> int:
    """A local port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_the_database():
    response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"].startswith("max-age=0")


@pytest.mark.django_db
def test_ready_with_a_recent_worker_heartbeat():
    worker_heartbeat_record(worker="host:1")
    response = Client().get("/readyz")
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ready" and body["failing"] == []
    assert set(body["checks"]) == {"database", "broker", "worker"}
    assert 0 <= body["checks"]["worker"]["heartbeat_age_seconds"] < 60


@pytest.mark.django_db
def test_not_ready_without_a_worker_or_with_a_stale_one(settings):
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]
    assert response.json()["checks"]["worker"] == {"ok": False, "error": "no worker has reported"}

    WorkerHeartbeat.objects.create(
        worker="host:2", beat_at=timezone.now() - timedelta(seconds=settings.WORKER_HEARTBEAT_SECONDS + 5)
    )
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"]


@pytest.mark.django_db
def test_a_broker_at_a_closed_port_is_named_and_its_address_is_not_shown(settings):
    worker_heartbeat_record(worker="host:3")
    settings.REDIS_URL = f"redis://:secret-password@127.0.0.1:{closed_port()}/0"
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["failing"] == ["broker"]
    assert response.json()["checks"]["broker"] == {"ok": False, "error": "unavailable"}
    assert b"127.0.0.1" not in response.content and b"secret" not in response.content


@pytest.mark.django_db
def test_old_heartbeats_are_pruned():
    WorkerHeartbeat.objects.create(worker="gone:1", beat_at=timezone.now() - timedelta(days=2))
    worker_heartbeat_record(worker="host:4")
    assert list(WorkerHeartbeat.objects.values_list("worker", flat=True)) == ["host:4"]
