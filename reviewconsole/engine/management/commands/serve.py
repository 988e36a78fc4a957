"""`manage.py serve`: the console the production way, web server and workers under one command.

Migrates, collects static files (hashed and compressed, served by WhiteNoise), then runs gunicorn with
WEB_CONCURRENCY processes on BIND and WORKERS `qcluster` processes beside it. Ctrl-C or SIGTERM stops them
all; if one of them stops by itself, the others are stopped too and the command fails, so a supervisor
(systemd, a container runtime) sees it and restarts the whole set.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

# How long the web server and the clusters get to finish their requests and tasks before they are killed.
# A task cut short is not lost: its run's lease runs out and another worker continues it from its last step.
STOP_GRACE_SECONDS = 20.0


class Command(BaseCommand):
    help = (
        "Migrate, collect static files, then serve with gunicorn (WEB_CONCURRENCY processes on BIND) and "
        "WORKERS qcluster processes; Ctrl-C or SIGTERM stops them all."
    )

    # The system checks load every flow, and CrewAI with them, which this process never needs: each qcluster
    # process runs them as it starts and reports a flow that cannot load.
    requires_system_checks: list[str] = []

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.DEBUG:
            raise CommandError("DEBUG is on: its error pages show settings and code to anyone. Unset DEBUG to serve.")
        base_dir = Path(settings.BASE_DIR)
        # The child processes read the settings afresh: collectstatic writes the manifest the web server reads.
        env = {**os.environ, "STATIC_MANIFEST": os.environ.get("STATIC_MANIFEST", "1")}
        call_command("migrate", interactive=False, verbosity=0)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
            cwd=base_dir,
            env=env,
            check=True,
        )
        gunicorn = [
            *(sys.executable, "-m", "gunicorn", "reviewconsole.wsgi:application"),
            *("--bind", settings.BIND, "--workers", str(settings.WEB_CONCURRENCY)),
            *("--access-logfile", "-", "--graceful-timeout", str(int(STOP_GRACE_SECONDS))),
            # Its control socket sits at one path per user, which a second server on the machine would take over.
            "--no-control-socket",
        ]
        commands = {"web server": gunicorn}
        for number in range(1, settings.WORKERS + 1):
            commands[f"worker {number}"] = [sys.executable, "manage.py", "qcluster"]
        self.stdout.write(self._banner())
        processes = {
            # Each in a session of its own: a stop reaches a cluster's forked workers through the group, and
            # Ctrl-C at the terminal reaches only this command, which stops the others in order.
            name: subprocess.Popen(command, cwd=base_dir, env=env, start_new_session=True)  # noqa: S603 (our commands)
            for name, command in commands.items()
        }
        exit_code = _supervise(processes)
        if exit_code:
            raise CommandError(f"stopped: {exit_code}")

    @staticmethod
    def _banner() -> str:
        public = settings.PUBLIC_URL.rstrip("/")
        return (
            f"Serving Review Console on http://{settings.BIND}/ with {settings.WEB_CONCURRENCY} web processes "
            f"(gunicorn) and {settings.WORKERS} qcluster workers of {settings.Q_WORKERS} each.\n"
            f"Log in at {public}/accounts/login/ (liveness {public}/healthz, readiness {public}/readyz).\n"
            "Ctrl-C stops the server and the workers."
        )


def _supervise(processes: dict[str, subprocess.Popen]) -> str:
    """Wait for a stop signal or for a process to end; stop them all. Returns why it stopped, if not asked to."""
    asked: list[int] = []

    def ask_to_stop(signum: int, frame: Any) -> None:
        asked.append(signum)

    previous = {sig: signal.signal(sig, ask_to_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        ended = ""
        while not asked and not ended:
            time.sleep(0.2)
            ended = next(
                (f"{name} exited with {p.returncode}" for name, p in processes.items() if p.poll() is not None), ""
            )
        _stop_all(processes)
        return ended
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_all(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM each leader (gunicorn and qcluster stop their own workers), then SIGKILL what is left."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes.values():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes.values():
        # The group, so a cluster's forked workers go with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
