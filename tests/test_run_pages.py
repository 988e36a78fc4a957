"""Browser pages for runs and flows: lists, the live run page, retry/cancel and the start form."""

import dataclasses
import datetime
import enum
import re
from typing import Literal

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone
from pydantic import BaseModel, Field

from reviewconsole.engine import registry, selectors
from reviewconsole.engine.forms import FlowInputForm
from reviewconsole.engine.models import FlowRun, RunStatus, RunTransition, Step, StepKind, StepStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewItem, ReviewStatus
from reviewconsole.reviews.roles import role_grant
from tests.people import client_for, user_in_role
from tests.people import user_with_engine_perms as make_user

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


@pytest.fixture
def manager() -> User:
    return make_user("mara", "view_flowrun", "add_flowrun", "change_flowrun")


@pytest.fixture
def viewer() -> User:
    return make_user("victor", "view_flowrun")


@pytest.fixture
def outsider() -> User:
    return make_user("otto")


@pytest.fixture
def manager_client(manager) -> Client:
    return client_for(manager)


@pytest.fixture
def viewer_client(viewer) -> Client:
    return client_for(viewer)


@pytest.fixture
def outsider_client(outsider) -> Client:
    return client_for(outsider)


def make_run(flow_name: str = "counter", status: str = RunStatus.COMPLETED, **fields) -> FlowRun:
    return FlowRun.objects.create(flow_name=flow_name, status=status, **fields)


def detail_url(run: FlowRun) -> str:
    return reverse("engine:run_detail", args=[run.id])


def row_ids(content: str) -> list[str]:
    return re.findall(r'<tr id="run-([0-9a-f-]{36})"', content)


# ---------------------------------------------------------------- access


def test_anonymous_is_sent_to_login(client):
    run = make_run()
    for url in [
        reverse("engine:home"),
        reverse("engine:run_list"),
        detail_url(run),
        reverse("engine:flow_list"),
        reverse("engine:flow_start", args=["counter"]),
    ]:
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/?next="), url
    response = client.post(reverse("engine:run_cancel", args=[run.id]))
    assert response["Location"].startswith("/accounts/login/")


def test_anonymous_htmx_poll_gets_hx_redirect_not_a_login_page(client):
    run = make_run(status=RunStatus.RUNNING)
    response = client.get(detail_url(run), headers=HTMX)
    assert response["HX-Redirect"].startswith("/accounts/login/")
    assert b"Log in" not in response.content


def test_user_without_permissions_gets_403_everywhere(outsider_client):
    run = make_run(status=RunStatus.FAILED)
    for url in [
        reverse("engine:run_list"),
        detail_url(run),
        reverse("engine:flow_list"),
        reverse("engine:flow_start", args=["counter"]),
    ]:
        response = outsider_client.get(url)
        assert response.status_code == 403, url
        assert b"have access to this page" in response.content, url
    assert outsider_client.post(reverse("engine:flow_start", args=["counter"]), {"loops": "1"}).status_code == 403
    assert outsider_client.post(reverse("engine:run_retry", args=[run.id])).status_code == 403
    assert outsider_client.post(reverse("engine:run_cancel", args=[run.id])).status_code == 403
    assert FlowRun.objects.count() == 1
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED


def test_403_hides_whether_a_run_exists(outsider_client):
    assert outsider_client.get("/runs/00000000-0000-0000-0000-000000000000/").status_code == 403


def test_viewer_can_read_but_not_start_retry_or_cancel(viewer_client):
    failed = make_run(status=RunStatus.FAILED, error="boom")
    page = viewer_client.get(detail_url(failed))
    assert page.status_code == 200
    assert b"Retry" not in page.content
    assert b"Cancel run" not in page.content
    assert viewer_client.get(reverse("engine:flow_start", args=["counter"])).status_code == 403
    assert viewer_client.post(reverse("engine:run_retry", args=[failed.id])).status_code == 403
    queued = make_run(status=RunStatus.QUEUED)
    assert viewer_client.post(reverse("engine:run_cancel", args=[queued.id])).status_code == 403
    assert b"Start a flow" not in viewer_client.get(reverse("engine:run_list")).content


def test_superuser_passes_every_check():
    admin = User.objects.create_superuser("root", password="pw")
    client = client_for(admin)
    run = make_run(status=RunStatus.FAILED)
    assert client.get(reverse("engine:run_list")).status_code == 200
    assert b"Retry" in client.get(detail_url(run)).content
    assert client.get(reverse("engine:flow_start", args=["counter"])).status_code == 200


def test_unknown_run_and_unknown_flow_are_404(manager_client):
    assert manager_client.get("/runs/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert manager_client.get(reverse("engine:flow_start", args=["nope"])).status_code == 404
    assert manager_client.post(reverse("engine:flow_start", args=["nope"]), {}).status_code == 404


# ---------------------------------------------------------------- output-type scope


@pytest.fixture
def finance() -> User:
    """A reviewer limited to invoices."""
    return user_in_role("finn", "reviewer", "invoice")


@pytest.fixture
def finance_manager() -> User:
    user = User.objects.create_user("fran")
    role_grant(user=user, role="manager", output_types=["invoice"])
    return user


def typed_runs() -> dict[str, FlowRun]:
    """A run of the invoice flow, of the content flow and of a flow that declares no output type."""
    return {
        "invoice": make_run("invoice_processing", RunStatus.FAILED, inputs={"raw_invoice": "INVOICE-TEXT"}),
        "article": make_run("content_production", RunStatus.FAILED, inputs={"topic": "ARTICLE-TOPIC"}),
        "untyped": make_run("counter", RunStatus.FAILED, inputs={"label": "UNTYPED-LABEL"}),
    }


def test_scoped_reviewer_sees_only_runs_of_flows_within_their_types(finance):
    runs = typed_runs()
    client = client_for(finance)
    listed = row_ids(client.get(reverse("engine:run_list")).content.decode())
    assert listed == [str(runs["invoice"].id)]
    assert client.get(detail_url(runs["invoice"])).status_code == 200
    for hidden in ("article", "untyped"):
        response = client.get(detail_url(runs[hidden]))
        assert response.status_code == 404, hidden
        assert client.get(detail_url(runs[hidden]), headers=HTMX).status_code == 404, hidden
    # Asking for the other flow by name finds nothing either.
    filtered = client.get(reverse("engine:run_list"), {"flow": "content_production"}).content.decode()
    assert str(runs["article"].id) not in filtered and "ARTICLE-TOPIC" not in filtered


def test_a_run_is_seen_only_by_users_who_may_see_every_type_its_flow_declares(monkeypatch, finance, viewer):
    two_types = dataclasses.replace(
        registry.get_flow("invoice_processing"), name="invoice_and_article", output_types=("invoice", "article_draft")
    )
    monkeypatch.setitem(registry.load_flows(), two_types.name, two_types)
    runs = [*typed_runs().values(), make_run(two_types.name), make_run("removed_flow")]
    both = user_in_role("bo", "reviewer", "invoice", "article_draft")
    outsider = user_in_role("olaf", None, "invoice")
    visible = {
        user.username: {run.flow_name for run in runs if selectors.run_is_visible_to(user, run)}
        for user in (finance, both, viewer, outsider)
    }
    assert visible == {
        "finn": {"invoice_processing"},
        "bo": {"invoice_processing", "content_production", "invoice_and_article"},
        "victor": {run.flow_name for run in runs},  # no limit: every run, of a removed flow too
        "olaf": set(),  # no permission to view runs
    }
    # The queryset and the check on a fetched run agree.
    for user in (finance, both, viewer, outsider):
        listed = set(selectors.runs_visible_to(user).values_list("flow_name", flat=True))
        assert listed == visible[user.username], user.username
    assert {spec.name for spec in selectors.flows_visible_to(both)} == visible["bo"]


def test_unscoped_reviewer_sees_every_run(viewer_client):
    runs = typed_runs()
    assert sorted(row_ids(viewer_client.get(reverse("engine:run_list")).content.decode())) == sorted(
        str(run.id) for run in runs.values()
    )


def test_scoped_manager_may_not_retry_cancel_or_start_other_types(finance_manager):
    runs = typed_runs()
    client = client_for(finance_manager)
    assert client.post(reverse("engine:run_retry", args=[runs["article"].id])).status_code == 404
    queued = make_run("content_production", RunStatus.QUEUED)
    assert client.post(reverse("engine:run_cancel", args=[queued.id])).status_code == 404
    queued.refresh_from_db()
    assert queued.status == RunStatus.QUEUED
    assert client.get(reverse("engine:flow_start", args=["content_production"])).status_code == 404
    assert client.post(reverse("engine:flow_start", args=["content_production"]), {"topic": "x"}).status_code == 404
    assert not FlowRun.objects.filter(flow_name="content_production", status=RunStatus.QUEUED).exclude(id=queued.id)
    flows = client.get(reverse("engine:flow_list")).content.decode()
    assert "invoice_processing" in flows and "content_production" not in flows and "counter" not in flows
    # Their own type's runs work as for any manager.
    assert client.post(reverse("engine:run_retry", args=[runs["invoice"].id])).status_code == 302


def test_admin_shows_a_scoped_manager_only_their_types_runs(finance_manager):
    runs = typed_runs()
    client = client_for(finance_manager)
    changelist = client.get(reverse("admin:engine_flowrun_changelist")).content.decode()
    assert str(runs["invoice"].id) in changelist
    assert str(runs["article"].id) not in changelist and str(runs["untyped"].id) not in changelist
    response = client.get(reverse("admin:engine_flowrun_change", args=[runs["article"].id]))
    assert response.status_code == 302 and "ARTICLE-TOPIC" not in response.content.decode()


def test_home_redirects_to_run_list(viewer_client):
    response = viewer_client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("engine:run_list")


# ---------------------------------------------------------------- run list


def test_run_list_shows_runs_with_flow_title_status_and_creator(viewer_client, manager):
    run = make_run(status=RunStatus.WAITING_REVIEW, created_by=manager, trigger="api", attempts=2)
    content = viewer_client.get(reverse("engine:run_list")).content.decode()
    assert "Counter (test)" in content
    assert str(run.id)[:8] in content
    assert detail_url(run) in content
    assert 'class="badge badge--waiting_review"' in content
    assert "mara" in content
    assert "api" in content


def test_run_list_filters_by_flow_and_status(viewer_client):
    counter_done = make_run("counter", RunStatus.COMPLETED)
    counter_failed = make_run("counter", RunStatus.FAILED)
    review_done = make_run("emit_review", RunStatus.COMPLETED)
    url = reverse("engine:run_list")

    def shown(query: dict) -> set[str]:
        return set(row_ids(viewer_client.get(url, query).content.decode()))

    assert shown({}) == {str(counter_done.id), str(counter_failed.id), str(review_done.id)}
    assert shown({"flow": "counter"}) == {str(counter_done.id), str(counter_failed.id)}
    assert shown({"status": "completed"}) == {str(counter_done.id), str(review_done.id)}
    assert shown({"flow": "counter", "status": "failed"}) == {str(counter_failed.id)}
    assert shown({"flow": "emit_review", "status": "failed"}) == set()
    # An unknown value is ignored rather than failing the page.
    assert shown({"status": "bogus"}) == {str(counter_done.id), str(counter_failed.id), str(review_done.id)}


def test_run_list_htmx_request_gets_only_the_table(viewer_client):
    make_run()
    response = viewer_client.get(reverse("engine:run_list"), {"status": "completed"}, headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<section id="run-table"')
    assert "<html" not in content
    assert "<form" not in content
    assert "HX-Request" in response["Vary"]


def test_run_list_history_restore_gets_the_whole_page(viewer_client):
    response = viewer_client.get(reverse("engine:run_list"), headers={**HTMX, "HX-History-Restore-Request": "true"})
    assert b"<html" in response.content


def test_run_list_paginates_50_per_page_and_keeps_filters(viewer_client):
    FlowRun.objects.bulk_create(FlowRun(flow_name="counter", status=RunStatus.COMPLETED) for _ in range(51))
    first = viewer_client.get(reverse("engine:run_list"), {"flow": "counter"}).content.decode()
    assert len(row_ids(first)) == 50
    assert "?flow=counter&amp;page=2" in first
    second = viewer_client.get(reverse("engine:run_list"), {"flow": "counter", "page": "2"}).content.decode()
    assert len(row_ids(second)) == 1
    assert "51\u201351 of 51" in second


def test_run_list_query_count_does_not_grow_with_rows(viewer_client, django_assert_num_queries):
    users = [make_user(f"user{n}") for n in range(30)]
    make_run(created_by=users[0])
    with CaptureQueriesContext(connection) as one_row:
        viewer_client.get(reverse("engine:run_list"))
    for user in users[1:]:
        make_run(created_by=user, status=RunStatus.FAILED)
    with django_assert_num_queries(len(one_row.captured_queries)):
        content = viewer_client.get(reverse("engine:run_list")).content.decode()
    assert len(row_ids(content)) == 30
    assert "user29" in content


# ---------------------------------------------------------------- run detail


def test_detail_escapes_hostile_run_data(viewer_client):
    run = make_run(
        status=RunStatus.FAILED,
        inputs={"label": HOSTILE},
        state={"notes": HOSTILE},
        result={"x": HOSTILE},
        error=f"ValueError: {HOSTILE}",
        traceback=f"Traceback (most recent call last):\n  {HOSTILE}",
    )
    Step.objects.create(run=run, method="prepare", status=StepStatus.FAILED, started_at=timezone.now(), error=HOSTILE)
    content = viewer_client.get(detail_url(run)).content.decode()
    assert HOSTILE not in content
    assert "<script>alert" not in content
    assert ESCAPED in content
    # JSON is pretty-printed before escaping.
    assert "{\n  &quot;x&quot;: &quot;&lt;script&gt;" in content


def test_detail_shows_header_steps_transitions_and_diagram(viewer_client, manager):
    now = timezone.now()
    run = make_run(
        status=RunStatus.RUNNING,
        attempts=1,
        created_by=manager,
        started_at=now,
        inputs={"label": "demo", "loops": 3},
    )
    RunTransition.objects.create(run=run, from_status="queued", to_status="running", note="claimed by w1")
    Step.objects.create(run=run, method="prepare", status=StepStatus.FINISHED, started_at=now, duration_ms=12.0)
    Step.objects.create(
        run=run,
        kind=StepKind.LLM,
        method="increment",
        status=StepStatus.FINISHED,
        started_at=now,
        duration_ms=2300,
        model="demo/echo",
        tokens_in=120,
        tokens_out=45,
    )
    Step.objects.create(run=run, method="increment", status=StepStatus.STARTED, started_at=now)
    content = viewer_client.get(detail_url(run)).content.decode()
    assert "Counter (test)" in content
    assert 'class="badge badge--running"' in content
    assert "claimed by w1" in content
    assert "12 ms" in content
    assert "2.3 s" in content
    assert "120 / 45" in content
    assert "demo/echo" in content
    assert "<svg" in content
    assert "status--finished" in content  # diagram coloured by the latest step status
    assert "status--started" in content
    assert "&quot;loops&quot;: 3" in content


def test_detail_names_the_demo_model_and_shows_real_model_ids(viewer_client):
    run = make_run()
    now = timezone.now()
    for model in ("demo", "gpt-4o-mini"):
        Step.objects.create(run=run, kind=StepKind.LLM, method="read", status="finished", started_at=now, model=model)
    content = viewer_client.get(detail_url(run)).content.decode()
    labels = re.findall(r'<span class="mono small"( title="[^"]*")?>([^<]*)</span>', content)
    assert labels == [(' title="model id: demo"', "demo model"), ("", "gpt-4o-mini")]


def test_detail_of_a_run_whose_flow_is_gone_has_no_diagram(viewer_client):
    run = make_run(flow_name="retired_flow", status=RunStatus.COMPLETED, result={"ok": True})
    response = viewer_client.get(detail_url(run))
    assert response.status_code == 200
    assert b"<svg" not in response.content
    assert b"no longer registered" in response.content


def test_poll_of_a_running_run_returns_200_and_keeps_polling(viewer_client):
    run = make_run(status=RunStatus.RUNNING)
    response = viewer_client.get(detail_url(run), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="run-live"')
    assert 'hx-trigger="every 2s"' in content
    assert "<html" not in content
    assert 'class="badge badge--running"' in content  # the status badge is part of the polled partial


def test_poll_of_a_queued_run_keeps_polling(viewer_client):
    run = make_run(status=RunStatus.QUEUED)
    response = viewer_client.get(detail_url(run), headers=HTMX)
    assert response.status_code == 200
    assert b'hx-trigger="every 2s"' in response.content


@pytest.mark.parametrize("status", [RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED])
def test_poll_of_a_finished_run_returns_286_to_stop_polling(viewer_client, status):
    run = make_run(status=status)
    response = viewer_client.get(detail_url(run), headers=HTMX)
    assert response.status_code == 286
    assert b"hx-trigger" not in response.content
    assert f"badge--{status}".encode() in response.content
    # The full page of a finished run does not poll at all.
    page = viewer_client.get(detail_url(run))
    assert page.status_code == 200
    assert b"hx-trigger" not in page.content


# Runs execute inline; the worker's lease heartbeat needs committed rows.
@pytest.mark.django_db(transaction=True)
def test_failed_run_started_from_the_form_shows_error_and_traceback(manager_client):
    response = manager_client.post(reverse("engine:flow_start", args=["bad_router"]), {})
    run = FlowRun.objects.get()
    assert response["Location"] == detail_url(run)
    assert run.status == RunStatus.FAILED
    content = manager_client.get(detail_url(run)).content.decode()
    assert "returned undeclared label &#x27;surprise&#x27;" in content
    assert "<summary>Traceback</summary>" in content
    assert "Retry" in content


# Runs execute inline; the worker's lease heartbeat needs committed rows.
@pytest.mark.django_db(transaction=True)
def test_paused_run_lists_its_review_item_and_polls_slowly(manager_client):
    manager_client.post(reverse("engine:flow_start", args=["emit_review"]), {"title": "Inv 9", "amount": "42"})
    run = FlowRun.objects.get()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    item = ReviewItem.objects.get(run=run)
    assert item.status == ReviewStatus.PENDING
    response = manager_client.get(detail_url(run), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert f'id="review-{item.id}"' in content
    assert "badge--pending" in content
    assert 'hx-trigger="every 10s"' in content
    assert "Cancel run" in content


# ---------------------------------------------------------------- retry and cancel


def test_retry_a_failed_run_queues_it_and_records_who(manager_client, manager):
    run = make_run(status=RunStatus.FAILED, error="boom", traceback="tb")
    response = manager_client.post(reverse("engine:run_retry", args=[run.id]))
    assert response.status_code == 302
    assert response["Location"] == detail_url(run)
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED
    assert run.error == ""
    assert RunTransition.objects.get(run=run, to_status=RunStatus.QUEUED).actor == manager
    assert b"Run queued again" in manager_client.get(detail_url(run)).content


# Runs execute inline; the worker's lease heartbeat needs committed rows.
@pytest.mark.django_db(transaction=True)
def test_retry_then_worker_completes_the_run(manager_client):
    run = make_run(status=RunStatus.CANCELLED, inputs={"label": "again", "loops": 1})
    manager_client.post(reverse("engine:run_retry", args=[run.id]))
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error
    assert run.result["count"] == 1


@pytest.mark.django_db(transaction=True)
def test_retry_of_a_run_cancelled_while_waiting_puts_it_back_in_review(manager_client):
    run = run_create(flow_name="emit_review", inputs={})
    manager_client.post(reverse("engine:run_cancel", args=[run.id]))
    response = manager_client.post(reverse("engine:run_retry", args=[run.id]), follow=True)
    assert b"Run waiting for review again; its review item is back in the queue." in response.content
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW
    assert ReviewItem.objects.get(run=run).status == ReviewStatus.PENDING


def test_retry_of_a_completed_run_is_refused_with_a_message(manager_client):
    run = make_run(status=RunStatus.COMPLETED)
    response = manager_client.post(reverse("engine:run_retry", args=[run.id]), follow=True)
    assert b"Only a failed or cancelled run can be retried." in response.content
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED


def test_htmx_retry_of_a_completed_run_is_409_into_the_alert_slot(manager_client):
    run = make_run(status=RunStatus.COMPLETED)
    response = manager_client.post(reverse("engine:run_retry", args=[run.id]), headers=HTMX)
    assert response.status_code == 409
    assert response["HX-Retarget"] == "#run-alert"
    assert b"Only a failed or cancelled run can be retried." in response.content
    assert b"<html" not in response.content


def test_cancel_a_queued_run(manager_client, manager):
    run = make_run(status=RunStatus.QUEUED)
    response = manager_client.post(reverse("engine:run_cancel", args=[run.id]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED
    assert RunTransition.objects.get(run=run, to_status=RunStatus.CANCELLED).actor == manager


def test_htmx_cancel_returns_the_refreshed_run_and_a_notice(manager_client):
    run = make_run(status=RunStatus.RUNNING)
    response = manager_client.post(reverse("engine:run_cancel", args=[run.id]), headers=HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<div id="run-live"')
    assert "badge--cancelled" in content
    assert 'id="run-alert" class="run-alert" aria-live="polite" hx-swap-oob="true"' in content
    assert "Run cancelled." in content
    assert "hx-trigger" not in content
    run.refresh_from_db()
    assert run.status == RunStatus.CANCELLED


def test_cancel_of_a_finished_run_is_refused(manager_client):
    run = make_run(status=RunStatus.FAILED)
    response = manager_client.post(reverse("engine:run_cancel", args=[run.id]), headers=HTMX)
    assert response.status_code == 409
    assert b"Only a queued, running or waiting run can be cancelled." in response.content


def test_retry_and_cancel_need_post(manager_client):
    run = make_run(status=RunStatus.FAILED)
    assert manager_client.get(reverse("engine:run_retry", args=[run.id])).status_code == 405
    assert manager_client.get(reverse("engine:run_cancel", args=[run.id])).status_code == 405


# ---------------------------------------------------------------- flows and the start form


def test_flow_list_shows_registered_flows_with_start_buttons(manager_client, viewer_client):
    content = manager_client.get(reverse("engine:flow_list")).content.decode()
    for name, title in [("counter", "Counter (test)"), ("bad_router", "Bad router (test)")]:
        assert title in content
        assert reverse("engine:flow_start", args=[name]) in content
    assert (
        reverse("engine:flow_start", args=["counter"]).encode()
        not in viewer_client.get(reverse("engine:flow_list")).content
    )


def test_start_form_renders_fields_from_the_input_model(manager_client):
    content = manager_client.get(reverse("engine:flow_start", args=["counter"])).content.decode()
    assert re.search(r'<input type="text" name="label" value="demo"[^>]*id="id_label"', content)
    assert re.search(r'<input type="number" name="loops" value="3"[^>]*step="1"', content)
    assert "<svg" in content
    review_form = manager_client.get(reverse("engine:flow_start", args=["emit_review"])).content.decode()
    assert re.search(r'<input type="number" name="amount" value="120.0"[^>]*step="any"', review_form)


def test_start_form_rejects_invalid_input_with_field_errors_and_creates_nothing(manager_client):
    response = manager_client.post(reverse("engine:flow_start", args=["counter"]), {"label": "x", "loops": "many"})
    content = response.content.decode()
    assert response.status_code == 200
    assert "Input should be a valid integer" in content
    assert 'id="id_loops_error"' in content
    assert 'value="many"' in content  # the typed value stays on the form
    assert FlowRun.objects.count() == 0


# Runs execute inline; the worker's lease heartbeat needs committed rows.
@pytest.mark.django_db(transaction=True)
def test_start_form_creates_a_run_and_redirects(manager_client, manager):
    response = manager_client.post(reverse("engine:flow_start", args=["counter"]), {"label": "web", "loops": "2"})
    run = FlowRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == detail_url(run)
    assert run.inputs == {"label": "web", "loops": 2}
    assert run.created_by == manager
    assert run.trigger == "ui"
    assert run.status == RunStatus.COMPLETED, run.error
    content = manager_client.get(detail_url(run)).content.decode()
    assert "Started Counter (test)." in content
    assert "badge--completed" in content
    assert "&quot;count&quot;: 2" in content


def test_start_form_blank_number_uses_the_default(manager_client):
    manager_client.post(reverse("engine:flow_start", args=["counter"]), {"label": "x", "loops": ""})
    assert FlowRun.objects.get().inputs == {"label": "x", "loops": 3}


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class RichInputs(BaseModel):
    title: str = Field(description="Shown to the reviewer")
    raw_text: str = ""
    notes: str = Field("", json_schema_extra={"widget": "textarea"})
    count: int = Field(1, ge=1, le=10)
    ratio: float | None = None
    urgent: bool = False
    mode: Literal["fast", "careful"] = "careful"
    colour: Colour = Colour.BLUE
    due: datetime.date | None = None
    tags: list[str] = []


def test_generated_form_picks_widgets_defaults_and_help_from_the_model():
    html = FlowInputForm(RichInputs).as_div()
    assert re.search(r'<input type="text" name="title"[^>]*required', html)
    assert "Shown to the reviewer" in html
    assert '<textarea name="raw_text"' in html
    assert '<textarea name="notes"' in html
    assert re.search(r'<input type="number" name="count" value="1"[^>]*min="1"[^>]*max="10"', html)
    assert re.search(r'<input type="number" name="ratio"[^>]*step="any"', html)
    assert '<input type="checkbox" name="urgent"' in html
    assert re.search(
        r'<select name="mode"[^>]*>\s*<option value="fast">fast</option>\s*<option value="careful" selected>', html
    )
    assert '<option value="blue" selected>' in html
    assert '<input type="date" name="due"' in html
    assert '<textarea name="tags"' in html


def test_generated_form_validates_with_pydantic_and_names_the_field():
    form = FlowInputForm(
        RichInputs, {"title": "", "count": "11", "mode": "sloppy", "colour": "red", "tags": "[1,", "due": "soon"}
    )
    assert not form.is_valid()
    assert "Enter valid JSON" in form.errors["tags"][0]
    form = FlowInputForm(RichInputs, {"title": "", "count": "11", "mode": "sloppy", "colour": "red", "due": "soon"})
    assert not form.is_valid()
    assert set(form.errors) == {"title", "count", "mode", "due"}
    assert form.errors["title"] == ["Field required"]
    assert "less than or equal to 10" in form.errors["count"][0]

    form = FlowInputForm(
        RichInputs,
        {
            "title": " T ",
            "raw_text": "line 1\r\nline 2",
            "count": "2",
            "urgent": "on",
            "mode": "fast",
            "colour": "red",
            "due": "2025-01-31",
            "tags": '["a"]',
        },
    )
    assert form.is_valid(), form.errors
    assert form.inputs == {
        "title": "T",
        "raw_text": "line 1\nline 2",
        "notes": "",
        "count": 2,
        "ratio": None,
        "urgent": True,
        "mode": "fast",
        "colour": "red",
        "due": "2025-01-31",
        "tags": ["a"],
    }


# ---------------------------------------------------------------- CSP


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)
EVENT_HANDLER = re.compile(r"<[^>]+\son[a-z]+\s*=", re.IGNORECASE)


def test_pages_send_csp_and_have_no_inline_script_or_style(manager_client, client):
    failed = make_run(status=RunStatus.FAILED, error="boom", traceback="tb", result={"a": 1})
    running = make_run(status=RunStatus.RUNNING)
    pages = {
        "list": manager_client.get(reverse("engine:run_list")),
        "failed": manager_client.get(detail_url(failed)),
        "running": manager_client.get(detail_url(running)),
        "flows": manager_client.get(reverse("engine:flow_list")),
        "form": manager_client.get(reverse("engine:flow_start", args=["counter"])),
        "form errors": manager_client.post(reverse("engine:flow_start", args=["counter"]), {"loops": "x"}),
        "login": client.get(reverse("login")),
    }
    for name, response in pages.items():
        content = response.content.decode()
        assert response.status_code == 200, name
        assert "script-src 'self'" in response["Content-Security-Policy"], name
        assert "<script" in content, name  # htmx is loaded, from a file
        assert not INLINE_SCRIPT.search(content), name
        assert ' style="' not in content, name
        assert "<style" not in content, name
        assert not EVENT_HANDLER.search(content), name
        assert 'hx-headers=\'{"X-CSRFToken": "' in content, name


@pytest.mark.django_db(transaction=True)
def test_a_completed_reviewed_invoice_run_shows_no_pause_and_no_model_call_for_the_decision(viewer_client):
    from reviewconsole.reviews.services import decide
    from tests.test_invoice_flow import CLEAN

    run = run_create(flow_name="invoice_processing", inputs={"raw_invoice": CLEAN})
    item = ReviewItem.objects.get(run=run)
    paused_at = Step.objects.get(run=run, method="review_invoice", status=StepStatus.PAUSED).started_at
    decide(item_id=item.id, user=make_user("rita"), outcome="approved")
    run.refresh_from_db()
    assert run.status == RunStatus.COMPLETED, run.error

    # The review step is one row, from its pause to the end of the resumed method.
    review = Step.objects.get(run=run, method="review_invoice")
    assert (review.status, review.started_at) == (StepStatus.FINISHED, paused_at)
    assert review.finished_at > paused_at
    # Only the model's reading of the invoice is an LLM call; the person's decision is not.
    assert list(Step.objects.filter(run=run, kind=StepKind.LLM).values_list("method", "model")) == [("extract", "demo")]
    content = viewer_client.get(detail_url(run)).content.decode()
    assert "Paused for review" not in content
    assert content.count('class="tag tag--llm"') == 1
    assert "status--paused" not in content  # nor in the diagram
