"""NUL characters and non-finite numbers are refused at the edge, naming where they are; never a 500.

PostgreSQL refuses NUL in text and jsonb, and JSON has no NaN or Infinity: each of these inputs used to reach
the database. On SQLite they were stored as they came, so each test fails there too without the edge check.
"""

import json

import pytest
from django.test import Client
from django.urls import reverse
from pydantic import BaseModel

from reviewconsole.autonomy.forms import PolicyForm
from reviewconsole.autonomy.models import POLICY_INT_MAX, AutonomyPolicy
from reviewconsole.autonomy.services import policy_ensure
from reviewconsole.engine.forms import FlowInputForm
from reviewconsole.engine.models import FlowRun, PendingFeedback, RunStatus
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.inputs import UnsafeInputError, json_loads
from reviewconsole.reviews import schema_form
from reviewconsole.reviews.models import Decision, ReviewItem
from tests.people import user_in_role

pytestmark = pytest.mark.django_db

INVOICE = {"vendor": "Acme", "invoice_number": "A-1", "currency": "USD", "line_items": [], "total_amount": 12.5}
SCHEMA = {
    "type": "object",
    "properties": {
        "vendor": {"type": "string"},
        "total_amount": {"type": "number"},
        "notes": {"type": "object", "additionalProperties": True},
    },
}


@pytest.fixture
def manager():
    return user_in_role("mona", "manager")


@pytest.fixture
def api(manager) -> Client:
    return Client(headers={"Authorization": f"Bearer {api_token_create(user=manager)}"})


@pytest.fixture
def item() -> ReviewItem:
    run = FlowRun.objects.create(
        flow_name="invoice_processing", status=RunStatus.WAITING_REVIEW, inputs={"raw_invoice": "Vendor: Acme"}
    )
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review_invoice", context={}, state={})
    return ReviewItem.objects.create(
        run=run,
        pending=pending,
        method="review_invoice",
        output_type="invoice",
        output=INVOICE,
        schema=SCHEMA,
        outcomes=["approved", "rejected"],
    )


def send(client: Client, method: str, url: str, raw_json: str):
    return getattr(client, method)(url, raw_json, content_type="application/json")


def refused_at(response, status: int = 400) -> list:
    assert response.status_code == status, response.content
    return [error["loc"] for error in response.json()["detail"]]


def test_nul_in_run_inputs_is_400_naming_the_field(api):
    url = "/api/v1/flows/content_production/runs"
    assert refused_at(send(api, "post", url, '{"topic": "beekeeping\\u0000"}')) == [["body", "topic"]]
    assert refused_at(send(api, "post", url, '{"topic": "bees", "x\\u0000": 1}')) == [["body", "x\x00"]]
    assert not FlowRun.objects.filter(flow_name="content_production").exists()


EDITED = ["body", "edited_output"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ('{"outcome": "approved", "comment": "fine\\u0000"}', ["body", "comment"]),
        ('{"outcome": "rejected", "reason_code": "wrong_data\\u0000"}', ["body", "reason_code"]),
        ('{"outcome": "approved", "edited_output": {"vendor": "Ac\\u0000me"}}', [*EDITED, "vendor"]),
        ('{"outcome": "approved", "edited_output": {"total_amount": NaN}}', [*EDITED, "total_amount"]),
        ('{"outcome": "approved", "edited_output": {"total_amount": Infinity}}', [*EDITED, "total_amount"]),
        ('{"outcome": "approved", "edited_output": {"total_amount": -Infinity}}', [*EDITED, "total_amount"]),
        ('{"outcome": "approved", "edited_output": {"total_amount": 1e309}}', [*EDITED, "total_amount"]),
        ('{"outcome": "approved", "edited_output": {"notes": {"lines": [1, 2, NaN]}}}', [*EDITED, "notes", "lines", 2]),
    ],
)
def test_nul_and_non_finite_numbers_in_a_decision_are_400_naming_the_path(api, item, body, loc):
    assert refused_at(send(api, "post", f"/api/v1/reviews/{item.id}/decision", body)) == [loc]
    item.refresh_from_db()
    assert item.status == "pending" and not Decision.objects.exists()


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ('{"reason": "because\\u0000"}', ["body", "reason"]),
        ('{"reason": "tidy", "reject_reasons": ["wrong_data", "in\\u0000complete"]}', ["body", "reject_reasons", 1]),
        ('{"reason": "tidy", "audit_rate": NaN}', ["body", "audit_rate"]),
    ],
)
def test_nul_and_non_finite_numbers_in_a_policy_change_are_400(api, body, loc):
    policy_ensure(output_type="invoice")
    assert refused_at(send(api, "patch", "/api/v1/autonomy/invoice", body)) == [loc]


@pytest.mark.parametrize("field", ["min_samples", "sla_minutes", "expiry_minutes"])
def test_policy_counts_beyond_the_column_are_422_naming_the_field(api, field):
    policy_ensure(output_type="invoice")
    body = json.dumps({"reason": "more", field: 10**20})
    assert refused_at(send(api, "patch", "/api/v1/autonomy/invoice", body), 422) == [["body", field]]
    ok = send(api, "patch", "/api/v1/autonomy/invoice", json.dumps({"reason": "most", field: POLICY_INT_MAX}))
    assert ok.status_code == 200


def test_policy_page_refuses_counts_beyond_the_column(manager):
    policy = policy_ensure(output_type="invoice")
    client = Client()
    client.force_login(manager)
    values = {**PolicyForm.initial_for(policy), "reason": "more", "min_samples": 10**20, "sla_minutes": 10**20}
    data = {
        key: value if isinstance(value, list) else str(value)  # a list: ticked checkboxes, one value each
        for key, value in values.items()
        if value is not None and not isinstance(value, bool)
    }
    data["review_all"] = "on"  # a new type has no threshold yet
    response = client.post(reverse("autonomy:type", args=["invoice"]), data)
    assert response.status_code == 422
    assert set(response.context["form"].errors) == {"min_samples", "sla_minutes"}
    assert AutonomyPolicy.objects.get(output_type="invoice").min_samples == policy.min_samples


@pytest.mark.parametrize(
    ("url", "loc"),
    [
        ("/api/v1/runs?flow=invoice%00", ["query", "flow"]),
        ("/api/v1/reviews?output_type=%00", ["query", "output_type"]),
        ("/api/v1/reviews?status=pending&x%00=1", ["query", "x\x00"]),
        ("/api/v1/autonomy/inv%00oice", ["path"]),
    ],
)
def test_nul_in_the_url_is_400_naming_the_parameter(api, url, loc):
    assert refused_at(api.get(url)) == [loc]


def test_pages_refuse_nul_in_query_strings_and_form_posts(manager, item):
    client = Client()
    client.force_login(manager)
    response = client.get("/runs/?flow=invoice%00")
    assert response.status_code == 400 and "query.flow" in response.content.decode()
    posted = {"outcome": "approved", "edit": "1", "output.vendor": "Ac\x00me", "output.total_amount": "12.5"}
    response = client.post(f"/reviews/{item.id}/decide/", posted)
    assert response.status_code == 400 and "form.output.vendor" in response.content.decode()
    assert not Decision.objects.exists()


def test_the_edit_form_refuses_non_finite_numbers_and_json(item):
    for typed in ("nan", "inf", "-Infinity", "1e309"):
        parsed = schema_form.parse_form(SCHEMA, {"output.total_amount": typed, "output.vendor": "Acme"})
        assert [error["loc"] for error in parsed.errors] == [["total_amount"]], typed
    parsed = schema_form.parse_form(
        SCHEMA, {"output.total_amount": "1", "output.vendor": "Acme", "output.notes": '{"ratio": NaN}'}
    )
    assert [(error["loc"], "finite" in error["msg"]) for error in parsed.errors] == [(["notes"], True)]
    parsed = schema_form.parse_form(SCHEMA, {"output.total_amount": "9" * 5000, "output.vendor": "Acme"})
    assert [error["loc"] for error in parsed.errors] == [["total_amount"]]


def test_one_validator_names_the_json_path():
    with pytest.raises(UnsafeInputError) as refused:
        json_loads('{"a": [{"b": 1}, {"c\\u0000": 2}]}')
    assert refused.value.loc == ("a", 1, "c\x00")
    assert json_loads('{"a": [1.5, -2, "ok"]}') == {"a": [1.5, -2, "ok"]}


def test_the_start_form_refuses_json_with_nan_or_an_escaped_nul():
    class Inputs(BaseModel):
        settings: dict = {}

    for typed in ('{"ratio": NaN}', '{"ratio": 1e309}', '{"name": "a\\u0000b"}'):
        form = FlowInputForm(Inputs, {"settings": typed})
        assert not form.is_valid() and list(form.errors) == ["settings"], typed
    assert FlowInputForm(Inputs, {"settings": '{"ratio": 0.5}'}).is_valid()
