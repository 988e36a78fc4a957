"""The OpenAPI document: for signed-in users only, self-contained, every status documented, each flow's inputs."""

import pytest
from django.test import Client

from reviewconsole.engine.tokens import api_token_create
from tests.people import user_in_role

pytestmark = pytest.mark.django_db

OPENAPI = "/api/v1/openapi.json"


@pytest.fixture
def document() -> dict:
    user = user_in_role("rita")
    return Client(headers={"Authorization": f"Bearer {api_token_create(user=user)}"}).get(OPENAPI).json()


def test_the_document_and_the_docs_need_a_login_or_a_token():
    anonymous = Client()
    assert anonymous.get(OPENAPI).status_code == 401
    assert anonymous.get(OPENAPI, headers={"Authorization": "Bearer not-a-token"}).status_code == 401
    docs = anonymous.get("/api/v1/docs")
    assert docs.status_code == 302 and docs["Location"].startswith("/accounts/login/")

    user = user_in_role("rita")
    assert Client(headers={"Authorization": f"Bearer {api_token_create(user=user)}"}).get(OPENAPI).status_code == 200
    signed_in = Client()
    signed_in.force_login(user)
    assert signed_in.get(OPENAPI).status_code == 200
    assert signed_in.get("/api/v1/docs").status_code == 200


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_every_ref_resolves_within_the_document(document):
    components = document["components"]["schemas"]
    refs = set(_refs(document))
    assert refs, "the document refers to its components"
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in components, ref
    patch = document["paths"]["/api/v1/autonomy/{output_type}"]["patch"]["requestBody"]
    mode = patch["content"]["application/json"]["schema"]["properties"]["mode"]
    assert mode["enum"] == ["manual", "recommend", "auto"]


def test_each_flow_documents_its_own_run_inputs(document):
    paths = document["paths"]
    assert "/api/v1/flows/{name}/runs" not in paths
    content = paths["/api/v1/flows/content_production/runs"]["post"]
    body = content["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["topic"] and body["properties"]["topic"]["maxLength"] == 200
    invoice = paths["/api/v1/flows/invoice_processing/runs"]["post"]["requestBody"]
    assert set(invoice["content"]["application/json"]["schema"]["properties"]) == {"raw_invoice"}
    operation_ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


@pytest.mark.parametrize(
    ("path", "method", "statuses"),
    [
        ("/api/v1/flows", "get", {"200", "400", "401", "403", "429"}),
        ("/api/v1/flows/counter/runs", "post", {"201", "400", "401", "403", "429", "404", "409", "422"}),
        ("/api/v1/runs", "get", {"200", "400", "401", "403", "429", "422"}),
        ("/api/v1/runs/{run_id}", "get", {"200", "400", "401", "403", "429", "404"}),
        ("/api/v1/reviews", "get", {"200", "400", "401", "403", "429", "422"}),
        ("/api/v1/reviews/reasons", "get", {"200", "400", "401", "403", "429"}),
        ("/api/v1/reviews/{item_id}", "get", {"200", "400", "401", "403", "429", "404"}),
        ("/api/v1/reviews/{item_id}/decision", "post", {"200", "400", "401", "403", "429", "404", "409", "422"}),
        ("/api/v1/autonomy/{output_type}", "get", {"200", "400", "401", "403", "429", "404", "422"}),
        ("/api/v1/autonomy/{output_type}", "patch", {"200", "400", "401", "403", "429", "404", "422"}),
        ("/api/v1/autonomy/{output_type}/export/audit", "get", {"200", "400", "401", "403", "429", "404", "422"}),
        ("/api/v1/autonomy/{output_type}/export/dataset", "get", {"200", "400", "401", "403", "429", "404", "422"}),
    ],
)
def test_every_status_an_operation_answers_is_documented_with_its_body(document, path, method, statuses):
    responses = document["paths"][path][method]["responses"]
    assert set(responses) == statuses
    for status in statuses - {"200", "201"}:
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/ErrorOut"}, status


def test_an_api_url_no_route_matches_is_a_json_404():
    user = user_in_role("rita")
    client = Client(headers={"Authorization": f"Bearer {api_token_create(user=user)}"})
    for url in ("/api/v1/autonomy/in%0Avoice", "/api/v1/no-such-thing"):
        response = client.get(url)
        assert (response.status_code, response.json()) == (404, {"detail": "Not found"})
    assert "text/html" in Client().get("/no-such-page/")["Content-Type"]


@pytest.mark.parametrize(("kind", "media_type"), [("audit", "text/csv"), ("dataset", "application/jsonl")])
def test_the_exports_document_what_they_stream(document, kind, media_type):
    operation = document["paths"][f"/api/v1/autonomy/{{output_type}}/export/{kind}"]["get"]
    assert set(operation["responses"]["200"]["content"]) == {media_type}
    assert "Content-Disposition" in operation["responses"]["200"]["headers"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"output_type", "date_from", "date_to"}
