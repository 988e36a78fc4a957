"""Flows that cannot be loaded: each module loads on its own, and their runs fail at once, saying why.

tests/flows_broken_import.py registers `half_loaded` and then fails to import; tests/flows_broken_structure.py
registers `misrouted` (a router label nobody listens to) next to the sound `well_routed`; tests.flows_not_there
is a FLOW_MODULES entry with a typo, which takes flows nobody can name with it.
"""

import logging

import pytest
from django.core import checks
from django.test import Client
from django.urls import reverse

from reviewconsole.engine import registry
from reviewconsole.engine.apps import check_registered_flows
from reviewconsole.engine.models import FlowRun, RunStatus
from reviewconsole.engine.services import run_create, runs_sweep
from tests.people import client_for, user_in_role, user_with_engine_perms

IMPORT_ERROR = "ModuleNotFoundError: No module named 'reviewconsole_no_such_dependency'"
TYPO_ERROR = "ModuleNotFoundError: No module named 'tests.flows_not_there'"
STRUCTURE_ERROR = "FlowStructureError: Flow 'misrouted': router 'choose' emits label 'maybe' that no method listens to"


@pytest.fixture
def broken(flow_modules):
    flow_modules("tests.flows_broken_import", "tests.flows_not_there", "tests.flows_broken_structure")


def test_a_broken_module_or_flow_does_not_stop_the_others_from_loading(broken):
    names = {spec.name for spec in registry.all_flows()}
    assert {"invoice_processing", "counter", "well_routed"} <= names
    assert not names & {"half_loaded", "misrouted"}
    failures = [(f.module, f.error, [spec.name for spec in f.flows]) for f in registry.load_failures()]
    assert failures == [
        ("tests.flows_broken_import", IMPORT_ERROR, ["half_loaded"]),
        ("tests.flows_not_there", TYPO_ERROR, []),
        ("tests.flows_broken_structure", STRUCTURE_ERROR, ["misrouted"]),
    ]
    assert "reviewconsole_no_such_dependency" in registry.load_failures()[0].traceback


def test_the_system_check_warns_of_each_failure_rather_than_stopping_start_up(broken):
    messages = check_registered_flows()
    assert [(message.level, message.id, message.msg) for message in messages] == [
        (checks.WARNING, "engine.W001", f"tests.flows_broken_import: {IMPORT_ERROR}"),
        (checks.WARNING, "engine.W001", f"tests.flows_not_there: {TYPO_ERROR}"),
        (checks.WARNING, "engine.W001", f"tests.flows_broken_structure: {STRUCTURE_ERROR}"),
    ]


def test_each_broken_module_is_logged_once_not_at_every_use(broken, caplog, transactional_db):
    caplog.set_level(logging.ERROR, logger="reviewconsole.engine.registry")
    for _ in range(3):
        registry.all_flows()
        run_create(flow_name="half_loaded", inputs={})  # executed inline: fails, and loads nothing again
    logged = [record.getMessage() for record in caplog.records if record.name == "reviewconsole.engine.registry"]
    assert len([line for line in logged if "tests.flows_broken_import" in line]) == 1
    assert len([line for line in logged if "tests.flows_broken_structure" in line]) == 1
    assert IMPORT_ERROR in logged[0]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("flow", "error"),
    [
        ("half_loaded", f"Flow 'half_loaded' cannot be loaded: {IMPORT_ERROR}"),
        ("misrouted", f"Flow 'misrouted' cannot be loaded: {STRUCTURE_ERROR}"),
        (
            "never_registered",
            f"Unknown flow 'never_registered'; flow modules that failed to load: tests.flows_broken_import "
            f"({IMPORT_ERROR}); tests.flows_not_there ({TYPO_ERROR}); tests.flows_broken_structure ({STRUCTURE_ERROR})",
        ),
    ],
)
def test_a_run_of_a_flow_that_cannot_be_loaded_fails_at_once_saying_why(broken, flow, error):
    run = run_create(flow_name=flow, inputs={})
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, error)
    assert runs_sweep() == 0  # nothing left for the sweeper to hand on
    # The sound flow beside the broken one still runs.
    sound = run_create(flow_name="well_routed", inputs={"topic": "ok"})
    sound.refresh_from_db()
    assert (sound.status, sound.result) == (RunStatus.COMPLETED, "OK")


@pytest.mark.django_db(transaction=True)
def test_a_run_of_an_unknown_flow_fails_with_its_name(flow_modules):
    flow_modules()
    run = run_create(flow_name="gone_since", inputs={})
    run.refresh_from_db()
    assert (run.status, run.error) == (RunStatus.FAILED, "Unknown flow 'gone_since'")


# ---------------------------------------------------------------- the Flows page and the API


@pytest.fixture
def manager() -> Client:
    return client_for(user_with_engine_perms("mara", "view_flowrun", "add_flowrun", "change_flowrun"))


@pytest.mark.django_db
def test_the_flows_page_lists_each_broken_module_with_its_error_and_the_good_flows(broken, manager):
    response = manager.get(reverse("engine:flow_list"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "Could not be loaded" in content
    for text in ["tests.flows_broken_import", IMPORT_ERROR, "Half loaded (test)", "tests.flows_not_there", TYPO_ERROR]:
        assert text.replace("'", "&#x27;") in content
    assert "tests.flows_broken_structure" in content
    assert "router &#x27;choose&#x27; emits label &#x27;maybe&#x27;" in content
    assert reverse("engine:flow_start", args=["well_routed"]) in content
    assert reverse("engine:flow_start", args=["misrouted"]) not in content
    assert "Traceback" not in content  # staff only


@pytest.mark.django_db
def test_tracebacks_are_for_staff_and_module_errors_for_staff_and_managers(broken):
    staff = user_with_engine_perms("sam", "view_flowrun")
    staff.is_staff = True
    staff.save()
    staff_page = client_for(staff).get(reverse("engine:flow_list")).content.decode()
    assert "Traceback" in staff_page
    assert "reviewconsole_no_such_dependency" in staff_page

    # Neither staff nor a manager: the flows they may see that failed, not a module that names none.
    viewer_page = client_for(user_with_engine_perms("vic", "view_flowrun")).get(reverse("engine:flow_list"))
    content = viewer_page.content.decode()
    assert "Half loaded (test)" in content and "Misrouted (test)" in content
    assert "tests.flows_not_there" not in content
    assert "Traceback" not in content


@pytest.mark.django_db
def test_a_scoped_reviewer_sees_only_the_broken_flows_of_their_types(broken):
    finance = client_for(user_in_role("fin", "reviewer", "invoice"))
    content = finance.get(reverse("engine:flow_list")).content.decode()
    # Both broken flows declare invoices; the modules' own names appear only with their flows.
    assert "Misrouted (test)" in content and "Half loaded (test)" in content
    assert "tests.flows_not_there" not in content
    outsider = client_for(user_in_role("art", "reviewer", "article_draft"))
    content = outsider.get(reverse("engine:flow_list")).content.decode()
    assert "Could not be loaded" not in content
    assert "misrouted" not in content.lower()


@pytest.mark.django_db
@pytest.mark.parametrize("flow", ["misrouted", "half_loaded"])
def test_starting_a_flow_that_cannot_be_loaded_is_refused_with_its_error(broken, manager, flow):
    for response in [
        manager.get(reverse("engine:flow_start", args=[flow])),
        manager.post(reverse("engine:flow_start", args=[flow]), {"topic": "x"}),
    ]:
        assert response.status_code == 409
        assert f"Flow &#x27;{flow}&#x27; cannot be loaded" in response.content.decode()
    assert FlowRun.objects.count() == 0


@pytest.mark.django_db
def test_the_api_lists_the_good_flows_and_refuses_to_start_a_broken_one(broken, manager):
    response = manager.get("/api/v1/flows")
    assert response.status_code == 200
    names = {flow["name"] for flow in response.json()}
    assert {"counter", "well_routed"} <= names
    assert not names & {"half_loaded", "misrouted"}

    refused = manager.post("/api/v1/flows/misrouted/runs", {"topic": "x"}, content_type="application/json")
    assert refused.status_code == 409
    assert refused.json()["detail"] == f"Flow 'misrouted' cannot be loaded: {STRUCTURE_ERROR}"
    assert FlowRun.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_good_flow_is_still_started_from_the_page(broken, manager):
    response = manager.post(reverse("engine:flow_start", args=["well_routed"]), {"topic": "fine"})
    assert response.status_code == 302
    run = FlowRun.objects.get()
    assert (run.status, run.result) == (RunStatus.COMPLETED, "FINE")
