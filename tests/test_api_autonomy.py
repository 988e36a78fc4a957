"""The JSON API for autonomy: read a type's policy with its statistics, change it with a reason.

The acceptance test runs real invoices through the invoice flow after a manager lowers the threshold.
"""

import io
import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviewconsole.autonomy.models import AutonomyPolicy, GateDecision, PolicyChange, Route, Verdict
from reviewconsole.autonomy.selectors import type_summary
from reviewconsole.autonomy.services import EDITABLE_POLICY_FIELDS, policy_ensure, policy_update
from reviewconsole.engine.models import RunStatus
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.reviews.models import ReviewItem

pytestmark = pytest.mark.django_db

URL = "/api/v1/autonomy/invoice"

CLEAN_INVOICE = """Vendor: Acme Supplies Ltd
Invoice Number: INV-1042
Invoice Date: 2026-10-01
Due Date: 2026-10-31
Currency: EUR
Widgets | 10 | 12.50 | 125.00
Gadgets | 2 | 40.00 | 80.00
Total: 205.00
"""

HIGH_VALUE_INVOICE = """Vendor: Globex
Invoice Number: GX-1
Invoice Date: 2026-10-20
Currency: USD
Turbine | 1 | 84,000.00 | 84,000.00
Total: 84,000.00
"""


def grant(username: str, role: str, *output_types: str) -> User:
    options = {"output_types": ",".join(output_types)} if output_types else {}
    call_command("grant", username, "--role", role, stdout=io.StringIO(), stderr=io.StringIO(), **options)
    return User.objects.get(username=username)


def bearer_client(user: User) -> Client:
    return Client(enforce_csrf_checks=True, headers={"Authorization": f"Bearer {api_token_create(user=user)}"})


def patch_json(client: Client, body: object, url: str = URL, **kwargs):
    data = body if isinstance(body, str) else json.dumps(body)
    return client.patch(url, data, content_type="application/json", **kwargs)


def post_json(client: Client, url: str, body: object):
    return client.post(url, json.dumps(body), content_type="application/json")


def error_locs(response) -> list[list[str]]:
    return [error["loc"] for error in response.json()["detail"]]


@pytest.fixture
def manager() -> User:
    return grant("maria", "manager")


@pytest.fixture
def manager_client(manager) -> Client:
    return bearer_client(manager)


@pytest.fixture
def finance() -> User:
    """A reviewer of invoices."""
    return grant("rita", "reviewer", "invoice")


@pytest.fixture
def finance_client(finance) -> Client:
    return bearer_client(finance)


# --- acceptance ------------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_lowering_the_threshold_auto_processes_clean_invoices_and_still_reviews_high_value_ones():
    manager = bearer_client(grant("maria", "manager"))
    reviewer = bearer_client(grant("rita", "reviewer", "invoice"))

    # A reviewer may read the policy but not change it.
    assert reviewer.get(URL).status_code == 200
    response = patch_json(reviewer, {"threshold": 0.5, "audit_rate": 0, "reason": "I think so"})
    assert response.status_code == 403
    # A change needs a reason, a threshold within [0, 1], and known fields only; the error names the field.
    response = patch_json(manager, {"threshold": 0.5, "audit_rate": 0})
    assert response.status_code == 422
    assert error_locs(response) == [["body", "reason"]]
    response = patch_json(manager, {"threshold": 1.5, "reason": "too high"})
    assert response.status_code == 422
    assert error_locs(response) == [["body", "threshold"]]
    response = patch_json(manager, {"colour": "blue", "reason": "not a field"})
    assert response.status_code == 422
    assert error_locs(response) == [["body", "colour"]]
    assert not PolicyChange.objects.exists()

    response = patch_json(manager, {"threshold": 0.5, "audit_rate": 0, "reason": "Audits hold up above 0.5"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["threshold"], body["audit_rate"]) == (0.5, 0.0)
    [change] = body["history"]
    assert change["by"] == "maria" and change["reason"] == "Audits hold up above 0.5" and not change["automatic"]
    assert change["changes"] == {"threshold": [None, 0.5], "audit_rate": [0.05, 0.0]}

    # A clean invoice completes without a person, and is counted as auto-processed.
    created = post_json(manager, "/api/v1/flows/invoice_processing/runs", {"raw_invoice": CLEAN_INVOICE})
    assert created.status_code == 201, created.content
    run = manager.get(f"/api/v1/runs/{created.json()['id']}").json()
    assert run["status"] == RunStatus.COMPLETED, run["error"]
    assert run["reviews"] == []
    assert not ReviewItem.objects.exists()
    assert type_summary("invoice")["auto"] == 1

    # A high-value invoice is still reviewed, whatever its confidence.
    created = post_json(manager, "/api/v1/flows/invoice_processing/runs", {"raw_invoice": HIGH_VALUE_INVOICE})
    run = manager.get(f"/api/v1/runs/{created.json()['id']}").json()
    assert run["status"] == RunStatus.WAITING_REVIEW, run["error"]
    assert ReviewItem.objects.get().reason == "high_value"

    stats = reviewer.get(URL).json()["stats"]
    assert (stats["total"], stats["auto"], stats["routed"]) == (2, 1, 1)
    assert stats["autonomy_rate"] == 0.5


# --- reading ---------------------------------------------------------------------------------------------------


def test_requests_without_credentials_get_401():
    policy_ensure(output_type="invoice")
    client = Client(enforce_csrf_checks=True)
    assert client.get(URL).status_code == 401
    assert patch_json(client, {"threshold": 0.5, "reason": "x"}).status_code == 401


def test_get_returns_the_policy_its_statistics_recommendation_and_history(manager_client, manager):
    policy_update(output_type="invoice", changes={"threshold": 0.8}, by=manager, reason="grant")
    GateDecision.objects.bulk_create(
        [
            GateDecision(output_type="invoice", confidence=0.9, route=Route.AUTO_APPROVED),
            GateDecision(output_type="invoice", confidence=0.6, route=Route.HUMAN_REVIEW, verdict=Verdict.CORRECT),
            GateDecision(output_type="invoice", confidence=0.5, route=Route.HUMAN_REVIEW, verdict=Verdict.INCORRECT),
        ]
    )
    body = manager_client.get(URL).json()
    assert set(body) == {
        "output_type",
        *EDITABLE_POLICY_FIELDS,
        "updated_at",
        "flow_version",
        "evidence_versions",
        "window",
        "stats",
        "recommendation",
        "history",
        "url",
    }
    assert body["window"] == {"key": "all", "since": None, "label": "all time"}
    assert (body["output_type"], body["threshold"], body["mode"]) == ("invoice", 0.8, "manual")
    assert body["url"] == "http://testserver/autonomy/invoice/"
    stats = body["stats"]
    assert (stats["reviewed"], stats["correct"], stats["accuracy"], stats["auto"]) == (2, 1, 0.5, 1)
    assert 0 < stats["ci_low"] < 0.5 < stats["ci_high"] < 1
    for key in ("audited", "auto_accuracy_estimate", "autonomy_rate", "autonomy_ci_low", "autonomy_ci_high"):
        assert key in stats
    rec = body["recommendation"]
    assert rec["threshold"] is None and rec["current_threshold"] == 0.8
    assert rec["min_samples"] == 50 and "Not enough evidence yet: 2 verdicts" in rec["reason"]
    assert "With 95% confidence" in rec["guarantee"] and "independent" in rec["guarantee"]
    assert rec["needed"] is not None and rec["needed"]["correct"] > 0
    assert [c["threshold"] for c in rec["evidence"]] == [0.6, 0.5]
    [change] = body["history"]
    assert set(change) == {"at", "by", "changes", "reason", "automatic"}
    assert (change["by"], change["changes"], change["automatic"]) == ("maria", {"threshold": [None, 0.8]}, False)


def test_who_may_read(finance_client):
    policy_ensure(output_type="invoice")
    policy_ensure(output_type="draft")
    drafts = bearer_client(grant("dan", "reviewer", "draft"))
    outsider = bearer_client(User.objects.create_user("otto"))
    everyone = bearer_client(grant("eve", "reviewer"))  # a reviewer without scopes reviews every type
    assert finance_client.get(URL).status_code == 200
    assert drafts.get(URL).status_code == 403
    assert drafts.get("/api/v1/autonomy/draft").status_code == 200
    assert outsider.get(URL).status_code == 403
    assert everyone.get(URL).status_code == 200


def test_unknown_types(manager_client, finance_client):
    assert manager_client.get("/api/v1/autonomy/no_such_type").status_code == 404
    unknown = patch_json(manager_client, {"threshold": 0.5, "reason": "x"}, "/api/v1/autonomy/no_such_type")
    assert unknown.status_code == 404
    # A type only a flow declares so far gets its policy on first use.
    assert not AutonomyPolicy.objects.filter(output_type="invoice").exists()
    body = manager_client.get(URL).json()
    assert body["threshold"] is None and body["history"] == []
    # A reviewer of other types learns nothing about which types exist.
    assert finance_client.get("/api/v1/autonomy/no_such_type").status_code == 403


def test_get_uses_the_same_number_of_queries_whatever_the_history(manager_client, manager, django_assert_num_queries):
    policy_update(output_type="invoice", changes={"threshold": 0.8}, by=manager, reason="first")
    manager_client.get(URL)  # the token's last use is written once a minute, here
    with CaptureQueriesContext(connection) as one:
        manager_client.get(URL)
    for n in range(10):
        policy_update(output_type="invoice", changes={"audit_rate": 0.01 * (n + 2)}, by=manager, reason=f"c{n}")
    with django_assert_num_queries(len(one.captured_queries)):
        assert len(manager_client.get(URL).json()["history"]) == 11


# --- changing --------------------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(manager_client):
    policy_ensure(output_type="invoice")
    body = {
        "always_review": True,
        "target_accuracy": 0.97,
        "min_samples": 80,
        "mode": "auto",
        "auto_min_threshold": 0.6,
        "auto_max_threshold": 0.9,
        "reject_reasons": ["wrong_data", "duplicate"],
        "sla_minutes": 60,
        "expiry_minutes": 1440,
        "expiry_outcome": "rejected",
        "reason": "Set up autopilot",
    }
    response = patch_json(manager_client, body)
    assert response.status_code == 200, response.content
    policy = AutonomyPolicy.objects.get(output_type="invoice")
    for field, value in body.items():
        if field != "reason":
            assert getattr(policy, field) == value, field
    assert (policy.threshold, policy.audit_rate) == (None, 0.05)
    change = PolicyChange.objects.get()
    assert set(change.changes) == set(body) - {"reason"}

    # null sets the threshold back to "review everything".
    patch_json(manager_client, {"threshold": 0.7, "reason": "grant"})
    assert patch_json(manager_client, {"threshold": None, "reason": "back to review"}).json()["threshold"] is None
    assert PolicyChange.objects.count() == 3


def test_patch_with_nothing_new_adds_no_history(manager_client):
    policy_ensure(output_type="invoice")
    response = patch_json(manager_client, {"audit_rate": 0.05, "reason": "same"})
    assert response.status_code == 200
    assert not PolicyChange.objects.exists()


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"threshold": 0.5}, ["body", "reason"]),
        ({"threshold": 0.5, "reason": "   "}, ["body", "reason"]),
        ({"threshold": -0.01, "reason": "x"}, ["body", "threshold"]),
        ({"threshold": "high", "reason": "x"}, ["body", "threshold"]),
        ({"audit_rate": 2, "reason": "x"}, ["body", "audit_rate"]),
        ({"mode": "yolo", "reason": "x"}, ["body", "mode"]),
        ({"min_samples": 0, "reason": "x"}, ["body", "min_samples"]),
        ({"always_review": "yes", "reason": "x"}, ["body", "always_review"]),
        ({"reject_reasons": [], "reason": "x"}, ["body", "reject_reasons"]),
        ({"reject_reasons": ["ok", ""], "reason": "x"}, ["body", "reject_reasons", 1]),
        ({"sla_minutes": 0, "reason": "x"}, ["body", "sla_minutes"]),
        ({"id": 5, "reason": "x"}, ["body", "id"]),
        ({"output_type": "other", "reason": "x"}, ["body", "output_type"]),
        ({"auto_min_threshold": 0.9, "auto_max_threshold": 0.8, "reason": "x"}, ["body", "auto_min_threshold"]),
    ],
)
def test_refused_changes_are_422_naming_the_field(manager_client, body, loc):
    policy_ensure(output_type="invoice")
    response = patch_json(manager_client, body)
    assert response.status_code == 422, response.content
    assert loc in error_locs(response)
    assert not PolicyChange.objects.exists()
    assert AutonomyPolicy.objects.get(output_type="invoice").threshold is None


def test_unknown_field_error_lists_the_policy_fields(manager_client):
    policy_ensure(output_type="invoice")
    [error] = patch_json(manager_client, {"colour": "blue", "reason": "x"}).json()["detail"]
    assert error["type"] == "extra_forbidden"
    assert "threshold" in error["msg"] and "audit_rate" in error["msg"]


@pytest.mark.parametrize("body", ["[1, 2]", '"threshold"'])
def test_body_that_is_not_an_object_is_422(manager_client, body):
    policy_ensure(output_type="invoice")
    assert patch_json(manager_client, body).status_code == 422


def test_malformed_json_is_400(manager_client):
    policy_ensure(output_type="invoice")
    response = patch_json(manager_client, '{"threshold": ')
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Malformed JSON body")


def test_reviewers_may_not_patch_even_their_own_type(finance_client):
    policy_ensure(output_type="invoice")
    response = patch_json(finance_client, {"threshold": 0.5, "reason": "please"})
    assert response.status_code == 403
    assert AutonomyPolicy.objects.get(output_type="invoice").threshold is None


def test_session_patch_needs_the_csrf_token(manager):
    policy_ensure(output_type="invoice")
    client = Client(enforce_csrf_checks=True)
    client.force_login(manager)
    assert client.get(URL).status_code == 200
    assert patch_json(client, {"threshold": 0.5, "reason": "x"}).status_code == 403
    client.get("/autonomy/")  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = patch_json(client, {"threshold": 0.5, "reason": "x"}, headers={"X-CSRFToken": token})
    assert response.status_code == 200, response.content


def test_openapi_documents_the_patch_body(manager_client):
    schema = manager_client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/autonomy/{output_type}"]["patch"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert "reason" in body["required"] and "threshold" in body["properties"]
    assert {"403", "404", "422"} <= set(operation["responses"])


def test_any_type_name_can_be_addressed(manager_client):
    policy_ensure(output_type="finance/invoice <v2>")
    response = manager_client.get("/api/v1/autonomy/finance/invoice%20%3Cv2%3E")
    assert response.status_code == 200
    assert response.json()["output_type"] == "finance/invoice <v2>"
    assert response.json()["url"] == "http://testserver/autonomy/finance/invoice%20%3Cv2%3E/"


def test_get_reads_the_window_asked_for_and_refuses_an_unknown_one(manager_client, manager):
    policy_ensure(output_type="invoice")
    old = GateDecision.objects.create(
        output_type="invoice", confidence=0.9, route=Route.HUMAN_REVIEW, verdict=Verdict.CORRECT
    )
    GateDecision.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=400))
    GateDecision.objects.create(
        output_type="invoice", confidence=0.9, route=Route.HUMAN_REVIEW, verdict=Verdict.INCORRECT
    )
    everything = manager_client.get(URL).json()
    recent = manager_client.get(URL + "?window=recent").json()
    assert everything["stats"]["reviewed"] == 2 and recent["stats"]["reviewed"] == 1
    assert recent["window"]["key"] == "recent" and recent["window"]["label"].startswith("the last")
    assert recent["recommendation"]["reviewed"] == 1 and everything["recommendation"]["reviewed"] == 2
    refused = manager_client.get(URL + "?window=forever")
    assert refused.status_code == 422 and refused.json()["detail"][0]["loc"] == ["query", "window"]


def test_get_keeps_forced_reviews_apart(manager_client):
    policy_ensure(output_type="invoice")
    GateDecision.objects.bulk_create(
        [
            GateDecision(output_type="invoice", confidence=0.9, route=Route.HUMAN_REVIEW, verdict=Verdict.CORRECT),
            *(
                GateDecision(
                    output_type="invoice",
                    confidence=0.95,
                    route=Route.HUMAN_REVIEW,
                    forced=True,
                    reason="high_value",
                    verdict=Verdict.CORRECT if i else Verdict.INCORRECT,
                )
                for i in range(4)
            ),
        ]
    )
    body = manager_client.get(URL).json()
    stats = body["stats"]
    assert (stats["reviewed"], stats["forced"], stats["forced_reviewed"], stats["forced_correct"]) == (1, 4, 4, 3)
    assert stats["forced_accuracy"] == 0.75 and 0 < stats["forced_ci_low"] < 0.75 < stats["forced_ci_high"] < 1
    assert [c["threshold"] for c in body["recommendation"]["evidence"]] == [0.9]
