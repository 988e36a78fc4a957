"""`manage.py runflow` and `manage.py create_api_token`."""

import json
import subprocess
import sys

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import CommandError, call_command
from django.test import Client

from reviewconsole.engine.models import FlowRun, RunStatus
from tests.workers import BASE_DIR, worker_env

COUNTER_RESULT = {"label": "x", "count": 2, "log": ["prepare", "increment 1", "increment 2"]}


def stdout_lines(capsys) -> list[str]:
    """Everything written to the real stdout, so stray prints from CrewAI would show up too."""
    return capsys.readouterr().out.splitlines()


@pytest.mark.django_db
def test_runflow_creates_a_queued_run_and_prints_one_json_line(capsys):
    call_command("runflow", "counter", "--input", '{"label": "x", "loops": 2}')

    [line] = stdout_lines(capsys)
    run = FlowRun.objects.get()
    assert json.loads(line) == {"id": str(run.id), "status": "queued"}
    assert (run.flow_name, run.inputs, run.trigger) == ("counter", {"label": "x", "loops": 2}, "cli")


@pytest.mark.django_db
def test_runflow_fills_in_defaults_without_input(capsys):
    call_command("runflow", "counter")
    assert FlowRun.objects.get().inputs == {"label": "demo", "loops": 3}


@pytest.mark.django_db(transaction=True)
def test_runflow_sync_executes_in_process_and_prints_the_result(capsys):
    call_command("runflow", "counter", "--input", '{"label": "x", "loops": 2}', "--sync")

    [line] = stdout_lines(capsys)
    run = FlowRun.objects.get()
    assert json.loads(line) == {"id": str(run.id), "status": "completed", "result": COUNTER_RESULT}
    assert run.status == RunStatus.COMPLETED
    # Executed once, here: the run was not also handed to the task queue.
    assert run.attempts == 1
    assert list(run.transitions.values_list("to_status", flat=True)) == ["queued", "running", "completed"]


@pytest.mark.django_db(transaction=True)
def test_runflow_sync_of_a_failing_flow_prints_the_error_and_exits_non_zero(capsys):
    with pytest.raises(CommandError, match=r"failed: .*undeclared label 'surprise'"):
        call_command("runflow", "bad_router", "--sync")

    [line] = stdout_lines(capsys)
    printed = json.loads(line)
    assert printed["status"] == "failed"
    assert printed["result"] is None
    assert "router 'decide' returned undeclared label 'surprise'" in printed["error"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ('{"loops": "many"}', r"Invalid inputs for flow 'counter': loops: Input should be a valid integer"),
        ("{not json", r"--input is not valid JSON: Expecting property name"),
        ("[1, 2]", r"--input must be a JSON object"),
    ],
)
def test_runflow_rejects_bad_input(raw, message):
    with pytest.raises(CommandError, match=message):
        call_command("runflow", "counter", "--input", raw)
    assert not FlowRun.objects.exists()


@pytest.mark.django_db
def test_runflow_unknown_flow():
    with pytest.raises(CommandError, match="Unknown flow 'nope'"):
        call_command("runflow", "nope")


@pytest.mark.django_db(transaction=True)
def test_runflow_process_prints_exactly_one_line_and_sets_the_exit_code():
    """The real command in its own process: nothing but the JSON line reaches stdout."""

    def runflow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "manage.py", "runflow", *args],
            cwd=BASE_DIR,
            env=worker_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )

    done = runflow("counter", "--input", '{"label": "x", "loops": 2}', "--sync")
    assert done.returncode == 0, done.stderr
    [line] = done.stdout.splitlines()
    assert json.loads(line)["result"] == COUNTER_RESULT

    invalid = runflow("counter", "--input", '{"loops": "many"}')
    assert invalid.returncode != 0
    assert invalid.stdout == ""
    assert "loops: Input should be a valid integer" in invalid.stderr


@pytest.mark.django_db
def test_create_api_token_prints_a_working_token_last(capsys):
    user = User.objects.create_user("olga")
    user.user_permissions.add(Permission.objects.get(content_type__app_label="engine", codename="view_flowrun"))

    call_command("create_api_token", "olga")

    lines = stdout_lines(capsys)
    assert len(lines) == 2
    assert "olga" in lines[0]
    response = Client().get("/api/v1/flows", headers={"Authorization": f"Bearer {lines[-1]}"})
    assert response.status_code == 200


@pytest.mark.django_db
def test_create_api_token_needs_an_existing_user():
    with pytest.raises(CommandError, match="No user named 'ghost'"):
        call_command("create_api_token", "ghost")


@pytest.mark.django_db
def test_create_api_token_refuses_an_inactive_user():
    User.objects.create_user("olga", is_active=False)
    with pytest.raises(CommandError, match="inactive"):
        call_command("create_api_token", "olga")
