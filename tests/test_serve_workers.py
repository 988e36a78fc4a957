"""`manage.py serve`, the production way: gunicorn and two qcluster processes, an invoice reviewed over HTTP."""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from reviewconsole.engine.tokens import api_token_create
from tests.people import user_in_role
from tests.workers import BASE_DIR, wait_for, worker_env

pytestmark = [pytest.mark.workers, pytest.mark.django_db(transaction=True)]

INVOICE = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Due Date: 2026-10-31
Currency: EUR
Description | Qty | Unit price | Amount
Widgets | 10 | 12.50 | 125.00
Total: 125.00
"""
METRICS_TOKEN = "serve-test-metrics"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Http:
    """JSON over HTTP to the served console, with an API token."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.token = base, token

    def call(self, method: str, path: str, body: object = None, token: str | None = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token or self.token}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except OSError:
            return 0, None  # not listening yet
        content = raw.decode()
        try:
            return status, json.loads(content)
        except ValueError:
            return status, content


@pytest.fixture
def served(tmp_path: Path):
    """`manage.py serve` on a free port; stopped with SIGTERM, which must stop everything it started."""
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip(
            "serves the production setup, PostgreSQL and Redis (CI's second pass): gunicorn processes and two "
            "clusters sharing one SQLite file is not a setup anyone should serve"
        )
    port = free_port()
    env = worker_env(
        DEBUG="0",
        BIND=f"127.0.0.1:{port}",
        PUBLIC_URL=f"http://127.0.0.1:{port}",
        WEB_CONCURRENCY="2",
        WORKERS="2",
        METRICS_TOKEN=METRICS_TOKEN,
    )
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "serve"],
            cwd=BASE_DIR,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    output = lambda: log.read_text(errors="replace")  # noqa: E731
    try:
        yield f"http://127.0.0.1:{port}", output
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, output()
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        print(output())


def test_serve_runs_an_invoice_to_review_and_to_completion_over_http(served):
    base, output = served
    manager = user_in_role("olga", "manager")
    http = Http(base, api_token_create(user=manager))
    # Ready: the database, Redis and a worker heartbeat, through gunicorn.
    readiness: list = []

    def ready() -> bool:
        readiness[:] = http.call("GET", "/readyz")
        return readiness[0] == 200

    wait_for(ready, timeout=60, what="/readyz", details=lambda: f"{readiness}\n{output()}")
    assert "Log in at " + base + "/accounts/login/" in output()

    status, created = http.call("POST", "/api/v1/flows/invoice_processing/runs", {"raw_invoice": INVOICE})
    assert status == 201, created
    run_id = created["id"]

    def pending_item() -> dict | None:
        status, page = http.call("GET", "/api/v1/reviews?status=pending")
        assert status == 200, page
        return next((item for item in page["results"] if item["run_id"] == run_id), None)

    item = wait_for(pending_item, timeout=40, what="the invoice's review item", details=output)
    status, decided = http.call("POST", f"/api/v1/reviews/{item['id']}/decision", {"outcome": "approved"})
    assert status == 200, decided

    def finished() -> dict | None:
        status, run = http.call("GET", f"/api/v1/runs/{run_id}")
        assert status == 200, run
        return run if run["status"] in {"completed", "failed", "cancelled"} else None

    run = wait_for(finished, timeout=40, what="the run to finish", details=output)
    assert run["status"] == "completed", run

    status, text = http.call("GET", "/metrics", token=METRICS_TOKEN)
    assert status == 200
    assert 'review_console_runs{status="completed"} 1.0' in text
    # Static files come from gunicorn too, hashed by collectstatic (the page links to the hashed name).
    status, page = http.call("GET", "/accounts/login/")
    css = next(part.split('"')[0] for part in page.split('href="') if part.split('"')[0].endswith(".css"))
    assert css.count(".") >= 2, css  # name.<hash>.css
    assert http.call("GET", css)[0] == 200
