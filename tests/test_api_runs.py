"""The JSON API for flows and runs: auth, errors, starting a run and reading it back."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.crypto import get_random_string

from reviewconsole.engine.models import ApiToken, FlowRun, PendingFeedback, RunStatus, Step, StepKind, StepStatus
from reviewconsole.engine.services import run_create
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from reviewconsole.reviews.roles import role_grant
from tests.people import user_with_engine_perms as make_user

pytestmark = pytest.mark.django_db

RUNS_URL = "/api/v1/flows/counter/runs"


@pytest.fixture
def operator() -> User:
    return make_user("olga", "view_flowrun", "add_flowrun")


@pytest.fixture
def viewer() -> User:
    return make_user("victor", "view_flowrun")


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post_inputs(client: Client, body: str, url: str = RUNS_URL, **kwargs):
    return client.post(url, body, content_type="application/json", **kwargs)


# --- authentication --------------------------------------------------------------------------------------------


def test_requests_without_credentials_get_401():
    client = Client(enforce_csrf_checks=True)
    assert client.get("/api/v1/flows").status_code == 401
    response = post_inputs(client, "{}")
    assert response.status_code == 401
    assert response.json() == {"detail": "Unauthorized"}


def test_unknown_bearer_token_gets_401(operator):
    api_token_create(user=operator)
    assert Client().get("/api/v1/flows", headers=bearer("not-a-real-token")).status_code == 401


def test_bearer_token_of_inactive_user_gets_401(operator):
    token = api_token_create(user=operator)
    operator.is_active = False
    operator.save()
    assert Client().get("/api/v1/flows", headers=bearer(token)).status_code == 401


def test_bearer_token_authenticates_without_csrf_and_records_last_use_once_a_minute(operator):
    token = api_token_create(user=operator)
    stored = ApiToken.objects.get()
    assert stored.prefix == token[:8] and token not in stored.digest and stored.last_used_at is None
    client = Client(enforce_csrf_checks=True)

    assert client.get("/api/v1/flows", headers=bearer(token)).status_code == 200
    first_use = ApiToken.objects.get().last_used_at
    assert first_use is not None
    assert post_inputs(client, '{"label": "t"}', headers=bearer(token)).status_code == 201
    assert ApiToken.objects.get().last_used_at == first_use

    ApiToken.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    client.get("/api/v1/flows", headers=bearer(token))
    assert ApiToken.objects.get().last_used_at > first_use
    assert FlowRun.objects.get().created_by == operator


def test_session_login_authenticates(operator_client):
    assert operator_client.get("/api/v1/flows").status_code == 200


def test_session_post_needs_the_csrf_token(operator):
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    response = post_inputs(client, "{}")
    assert response.status_code == 403
    assert response.json() == {"detail": "CSRF check Failed"}

    secret = get_random_string(32)
    client.cookies["csrftoken"] = secret
    assert post_inputs(client, "{}", headers={"X-CSRFToken": secret}).status_code == 201


# --- flows -----------------------------------------------------------------------------------------------------


def test_flow_list_describes_inputs(viewer):
    client = Client()
    client.force_login(viewer)
    flows = {flow["name"]: flow for flow in client.get("/api/v1/flows").json()}
    counter = flows["counter"]
    assert counter["title"] == "Counter (test)"
    assert counter["output_types"] == []
    assert set(counter["input_schema"]["properties"]) == {"label", "loops"}
    assert flows["emit_review"]["output_types"] == ["draft"]


def test_flow_list_needs_view_permission():
    client = Client()
    client.force_login(make_user("nadia"))
    response = client.get("/api/v1/flows")
    assert response.status_code == 403
    assert "engine.view_flowrun" in response.json()["detail"]


# --- starting a run --------------------------------------------------------------------------------------------


def test_start_run_returns_201_with_id_status_and_url(operator_client, operator):
    response = post_inputs(operator_client, '{"label": "x"}')
    assert response.status_code == 201
    body = response.json()
    run = FlowRun.objects.get()
    assert body == {"id": str(run.id), "status": "queued", "url": f"http://testserver/runs/{run.id}/"}
    # Stored as validated by the flow's input model, defaults filled in.
    assert run.inputs == {"label": "x", "loops": 3}
    assert (run.flow_name, run.trigger, run.created_by) == ("counter", "api", operator)


def test_start_run_of_unknown_flow_is_404(operator_client):
    response = post_inputs(operator_client, "{}", url="/api/v1/flows/nope/runs")
    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown flow 'nope'"}


def test_invalid_inputs_are_422_naming_the_field(operator_client):
    response = post_inputs(operator_client, '{"label": "x", "loops": "many"}')
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "inputs", "loops"]
    assert error["type"] == "int_parsing"
    assert "integer" in error["msg"]
    assert not FlowRun.objects.exists()


def test_malformed_json_is_400_saying_so(operator_client):
    response = post_inputs(operator_client, "{not json")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed JSON body: Expecting property name")


@pytest.mark.parametrize("body", ["[1, 2]", '"loops"', ""])
def test_body_that_is_not_an_object_is_422(operator_client, body):
    response = post_inputs(operator_client, body)
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [["body", "inputs"]]


def test_start_run_needs_add_permission(viewer):
    client = Client()
    client.force_login(viewer)
    response = post_inputs(client, "{}")
    assert response.status_code == 403
    assert response.json() == {"detail": "You need the 'engine.add_flowrun' permission."}
    assert not FlowRun.objects.exists()


# --- reading a run ---------------------------------------------------------------------------------------------


def add_steps(run: FlowRun, count: int) -> None:
    start = timezone.now()
    Step.objects.bulk_create(
        Step(
            run=run,
            kind=StepKind.LLM if i % 2 else StepKind.METHOD,
            method=f"step{i}",
            status=StepStatus.FINISHED,
            started_at=start + timedelta(seconds=i),
            finished_at=start + timedelta(seconds=i, milliseconds=250),
            duration_ms=250.0,
            model="gpt-test" if i % 2 else "",
            tokens_in=100 + i if i % 2 else None,
            tokens_out=20 + i if i % 2 else None,
        )
        for i in range(count)
    )


def add_review(run: FlowRun, *, decided_by: User | None = None) -> ReviewItem:
    pending = PendingFeedback.objects.create(
        flow_uuid=str(run.id), method="draft", context={}, state={}, cleared_at=timezone.now() if decided_by else None
    )
    item = ReviewItem.objects.create(
        run=run,
        pending=pending,
        method="draft",
        output_type="draft",
        output={"title": "Invoice 7"},
        outcomes=["approved", "rejected"],
        status=ReviewStatus.DECIDED if decided_by else ReviewStatus.PENDING,
    )
    if decided_by:
        Decision.objects.create(item=item, outcome="approved", comment="fine", user=decided_by)
    return item


def test_get_run_returns_steps_with_tokens_and_reviews(operator_client, operator):
    run = run_create(flow_name="counter", inputs={"label": "x", "loops": 2}, user=operator)
    add_steps(run, 2)
    decided = add_review(run, decided_by=operator)
    pending = add_review(run)

    response = operator_client.get(f"/api/v1/runs/{run.id}")

    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(run.id)
    assert body["flow"] == "counter"
    assert body["status"] == "queued"
    assert body["inputs"] == {"label": "x", "loops": 2}
    assert (body["result"], body["error"], body["traceback"], body["attempts"]) == (None, "", "", 0)
    assert body["started_at"] is None and body["finished_at"] is None
    method_step, llm_step = body["steps"]
    assert method_step["kind"] == "method" and method_step["tokens_in"] is None
    assert llm_step == {
        "method": "step1",
        "kind": "llm",
        "status": "finished",
        "started_at": llm_step["started_at"],
        "finished_at": llm_step["finished_at"],
        "duration_ms": 250.0,
        "tokens_in": 101,
        "tokens_out": 21,
        "model": "gpt-test",
        "error": "",
    }
    first, second = body["reviews"]
    assert first["id"] == str(decided.id)
    assert (first["method"], first["output_type"], first["reason"], first["status"]) == (
        "draft",
        "draft",
        "flow_requested",
        "decided",
    )
    assert first["decision"]["outcome"] == "approved"
    assert first["decision"]["user"] == "olga"
    assert first["decision"]["comment"] == "fine"
    assert second["id"] == str(pending.id)
    assert second["decision"] is None


def test_get_run_uses_the_same_number_of_queries_for_1_and_20_steps(
    operator_client, operator, django_assert_num_queries
):
    small = run_create(flow_name="counter", inputs={}, user=operator)
    add_steps(small, 1)
    add_review(small, decided_by=operator)
    large = run_create(flow_name="counter", inputs={}, user=operator)
    add_steps(large, 20)
    for _ in range(3):
        add_review(large, decided_by=operator)
    add_review(large)

    with CaptureQueriesContext(connection) as small_queries:
        assert operator_client.get(f"/api/v1/runs/{small.id}").status_code == 200

    with django_assert_num_queries(len(small_queries)):
        response = operator_client.get(f"/api/v1/runs/{large.id}")
    assert len(response.json()["steps"]) == 20
    assert len(response.json()["reviews"]) == 4


@pytest.mark.parametrize("run_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid", "123"])
def test_unknown_or_malformed_run_id_is_404(operator_client, run_id):
    response = operator_client.get(f"/api/v1/runs/{run_id}")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found"}


def test_get_run_needs_view_permission(operator):
    run = run_create(flow_name="counter", inputs={}, user=operator)
    client = Client()
    client.force_login(make_user("nadia"))
    assert client.get(f"/api/v1/runs/{run.id}").status_code == 403


# --- listing runs ----------------------------------------------------------------------------------------------


def test_run_list_pages_newest_first_with_a_next_cursor(operator_client, operator):
    runs = [run_create(flow_name="counter", inputs={"loops": i}, user=operator) for i in range(3)]

    first = operator_client.get("/api/v1/runs?page_size=2").json()
    assert [item["id"] for item in first["results"]] == [str(runs[2].id), str(runs[1].id)]
    assert first["results"][0]["flow"] == "counter"
    assert first["results"][0]["created_by"] == "olga"
    assert first["results"][0]["status"] == "queued"
    assert first["next"]

    second = operator_client.get(first["next"]).json()
    assert [item["id"] for item in second["results"]] == [str(runs[0].id)]
    assert second["next"] is None


def test_run_list_filters_by_flow_and_status(operator_client, operator):
    counter = run_create(flow_name="counter", inputs={}, user=operator)
    review = run_create(flow_name="emit_review", inputs={})
    FlowRun.objects.filter(id=review.id).update(status=RunStatus.FAILED)

    def ids(query: str) -> list[str]:
        return [item["id"] for item in operator_client.get(f"/api/v1/runs?{query}").json()["results"]]

    assert ids("flow=counter") == [str(counter.id)]
    assert ids("status=failed") == [str(review.id)]
    assert ids("flow=counter&status=failed") == []


@pytest.mark.parametrize(("query", "loc"), [("status=exploded", ["query", "status"]), ("cursor=%25%25", None)])
def test_run_list_rejects_bad_parameters_with_422(operator_client, query, loc):
    response = operator_client.get(f"/api/v1/runs?{query}")
    assert response.status_code == 422
    if loc:
        assert [error["loc"] for error in response.json()["detail"]] == [loc]


# --- output-type scope -----------------------------------------------------------------------------------------


def scoped_bearer_client(*, manager: bool = False) -> Client:
    """A client with the bearer token of a user limited to invoices (a reviewer, or a manager)."""
    role = "manager" if manager else "reviewer"
    user = User.objects.create_user(f"finance_{role}")
    role_grant(user=user, role=role, output_types=["invoice"])
    return Client(headers=bearer(api_token_create(user=user)))


def test_scoped_reviewer_reads_only_runs_of_flows_within_their_types():
    invoice = run_create(flow_name="invoice_processing", inputs={"raw_invoice": "INVOICE-TEXT"})
    article = run_create(flow_name="content_production", inputs={"topic": "ARTICLE-TOPIC"})
    untyped = run_create(flow_name="counter", inputs={})
    client = scoped_bearer_client()
    listed = client.get("/api/v1/runs").json()["results"]
    assert [item["id"] for item in listed] == [str(invoice.id)]
    assert client.get("/api/v1/runs?flow=content_production").json()["results"] == []
    assert client.get(f"/api/v1/runs/{invoice.id}").status_code == 200
    for hidden in (article, untyped):
        response = client.get(f"/api/v1/runs/{hidden.id}")
        # The same answer as for a run that does not exist: nothing says it does.
        assert (response.status_code, response.json()) == (404, {"detail": "Not found"})


def test_scoped_users_see_and_start_only_flows_within_their_types():
    assert [flow["name"] for flow in scoped_bearer_client().get("/api/v1/flows").json()] == ["invoice_processing"]
    client = scoped_bearer_client(manager=True)
    response = post_inputs(client, '{"topic": "x"}', url="/api/v1/flows/content_production/runs")
    assert response.status_code == 404
    assert not FlowRun.objects.exists()
    response = post_inputs(client, '{"raw_invoice": "x"}', url="/api/v1/flows/invoice_processing/runs")
    assert response.status_code == 201


# --- OpenAPI ---------------------------------------------------------------------------------------------------


def test_openapi_document_lists_paths_and_schemas(viewer):
    response = Client(headers=bearer(api_token_create(user=viewer))).get("/api/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["info"]["title"] == "Review Console API"
    assert {"/api/v1/flows", "/api/v1/flows/counter/runs", "/api/v1/runs", "/api/v1/runs/{run_id}"} <= set(
        document["paths"]
    )
    assert {"FlowOut", "RunCreatedOut", "RunOut", "StepOut", "ReviewOut"} <= set(document["components"]["schemas"])
    assert set(document["components"]["securitySchemes"]) == {"BearerTokenAuth", "LoginSessionAuth"}


# --- end to end ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_run_started_through_the_api_executes_and_reads_back_completed():
    user = make_user("olga", "view_flowrun", "add_flowrun")
    client = Client(headers=bearer(api_token_create(user=user)))

    created = post_inputs(client, '{"label": "x", "loops": 2}')
    assert created.status_code == 201

    # Tasks run inline in tests, so the run has finished once the transaction committed.
    body = client.get(f"/api/v1/runs/{created.json()['id']}").json()
    assert body["status"] == RunStatus.COMPLETED, body["error"]
    assert body["result"] == {"label": "x", "count": 2, "log": ["prepare", "increment 1", "increment 2"]}
    assert body["attempts"] == 1
    assert body["started_at"] and body["finished_at"]
    methods = [step["method"] for step in body["steps"]]
    assert methods == ["prepare", "increment", "check", "increment", "check", "finish"]
    assert all(step["status"] == "finished" and step["kind"] == "method" for step in body["steps"])
    assert body["reviews"] == []
