"""/metrics: the token gate, and figures that match what the console itself shows."""

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from reviewconsole.engine.models import RunStatus, Step
from reviewconsole.reviews.selectors import queue_counts
from reviewconsole.reviews.services import decide
from tests.paused_runs import paused_item
from tests.people import user_in_role

pytestmark = pytest.mark.django_db

TOKEN = "metrics-test-token"


@pytest.fixture
def scraper(settings) -> Client:
    settings.METRICS_TOKEN = TOKEN
    return Client(headers={"Authorization": f"Bearer {TOKEN}"})


def scrape(client: Client) -> dict[str, dict[tuple, float]]:
    """Each sample's value by sample name and sorted labels."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    samples: dict[str, dict[tuple, float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def pending_gauge(samples: dict, output_type: str) -> float:
    return samples["review_console_pending_items"].get((("output_type", output_type),), 0)


def test_no_token_configured_means_no_metrics(settings):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", headers={"Authorization": "Bearer "}).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", TOKEN])
def test_a_missing_or_wrong_token_is_refused(settings, header):
    settings.METRICS_TOKEN = TOKEN
    headers = {"Authorization": header} if header else {}
    response = Client().get("/metrics", headers=headers)
    assert response.status_code == 401
    assert b"review_console" not in response.content


@pytest.mark.django_db(transaction=True)
def test_pending_gauge_equals_the_queue_count_scoped_and_unscoped(scraper):
    drafts = [paused_item("payload_review") for _ in range(3)]
    paused_item("decorated_review")
    reviewer = user_in_role("rita")
    scoped = user_in_role("sam", "reviewer", "draft")
    decide(item_id=drafts[0].id, user=reviewer, outcome="approved")

    samples = scrape(scraper)
    everything = queue_counts(user=reviewer)
    assert {row.output_type for row in everything} == {"draft", "typed_draft"}
    for row in everything:
        assert pending_gauge(samples, row.output_type) == row.pending
    (draft,) = queue_counts(user=scoped)
    assert pending_gauge(samples, "draft") == draft.pending == 2
    assert samples["review_console_oldest_pending_age_seconds"][(("output_type", "draft"),)] >= 0


@pytest.mark.django_db(transaction=True)
def test_runs_decisions_steps_and_resumes_are_counted(scraper):
    item = paused_item("payload_review")
    paused_item("payload_review")
    decide(item_id=item.id, user=user_in_role("rita"), outcome="approved")

    samples = scrape(scraper)
    runs = samples["review_console_runs"]
    assert runs[(("status", RunStatus.COMPLETED),)] == 1
    assert runs[(("status", RunStatus.WAITING_REVIEW),)] == 1
    assert runs[(("status", RunStatus.FAILED),)] == 0
    assert samples["review_console_decisions"] == {(("outcome", "approved"), ("output_type", "draft")): 1}
    resumed = samples["review_console_resume_latency_seconds_bucket"]
    assert resumed[(("le", "+Inf"), ("output_type", "draft"))] == 1
    steps = samples["review_console_step_duration_seconds_bucket"]
    finished = Step.objects.filter(duration_ms__isnull=False, run__flow_name="payload_review").count()
    assert finished > 0
    assert sum(v for labels, v in steps.items() if ("le", "+Inf") in labels) == finished
    # Buckets are cumulative.
    method_buckets = [v for labels, v in steps.items() if ("kind", "method") in labels]
    assert method_buckets == sorted(method_buckets)


def test_heartbeat_age_is_infinite_without_a_worker(scraper):
    assert scrape(scraper)["review_console_worker_heartbeat_age_seconds"][()] == float("inf")
