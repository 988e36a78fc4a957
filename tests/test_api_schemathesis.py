"""Schemathesis against the API's own OpenAPI document, on a database where every sample flow has run.

An outside tool generates requests for every documented operation (valid ones from the schemas, and invalid
ones) and checks that none is a server error and that every answer matches the document: its status, content
type, body schema and headers. It runs as a manager and as a reviewer limited to invoices, on a database seeded
through the product's own paths (`demo_seed`), with pending and decided items of every reason the sample flows
give, built-in and flow-declared.

Bounded for CI: examples are derandomized (the same requests every run), a few dozen per operation and mode,
and never shrunk. No worker runs while the requests are made: runs they start and decisions they make are
recorded and queued, not executed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from django.contrib.auth.models import User
from django.core.wsgi import get_wsgi_application
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from reviewconsole import demo_seed
from reviewconsole.autonomy.services import policy_update
from reviewconsole.engine.models import FlowRun
from reviewconsole.engine.tokens import api_token_create
from reviewconsole.reviews.models import ReviewItem, ReviewStatus
from reviewconsole.reviews.reasons import BUILT_IN
from reviewconsole.reviews.services import decide

# The seed runs flows, whose steps use the database from CrewAI's worker threads: they must see committed rows.
pytestmark = pytest.mark.django_db(transaction=True)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
# Per operation and generation mode; raise it locally (SCHEMATHESIS_EXAMPLES=500) for a deeper search.
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "15"))
SEED_INVOICES = 10


def _seed() -> None:
    """Every sample flow's branches, through the product's paths; the resumes run as the decisions commit."""
    demo_seed.users_ensure()
    demo_seed.policies_ensure()
    # Lead outreach may go straight through below the executive rule, so auto-approval is covered too.
    policy_update(output_type="outreach_email", changes={"threshold": 0.5}, by=None, reason="seed: autonomy")
    demo_seed.history_seed(invoices=SEED_INVOICES, leave_every=3, progress=lambda line: None)
    # A rejected draft is rewritten and reviewed again, for the `revision` reason.
    draft = ReviewItem.objects.filter(output_type="article_draft", status=ReviewStatus.PENDING).first()
    decide(
        item_id=draft.id,
        user=User.objects.get(username="reviewer"),
        outcome="rejected",
        reason_code="incomplete",
        comment="Say more about the figures.",
    )


@pytest.fixture
def seeded(monkeypatch) -> list[tuple[Any, ...]]:
    """The seeded database; then tasks are only recorded (the list returned), as if no worker were running."""
    _seed()
    reasons = set(ReviewItem.objects.values_list("reason", flat=True))
    # Items with the flows' own reasons are the ones a closed list of reasons broke.
    assert {"unreadable", "thin_research", "revision", "executive_contact"} <= reasons
    assert reasons - set(BUILT_IN)
    assert ReviewItem.objects.filter(status=ReviewStatus.PENDING).exclude(reason__in=BUILT_IN).exists()
    queued: list[tuple[Any, ...]] = []
    monkeypatch.setattr("django_q.tasks.async_task", lambda *args, **kwargs: queued.append(args))
    return queued


def _path_values() -> dict[str, list[Any]]:
    """Existing ids and types, so generated requests reach real runs, items and policies, not only 404s."""
    return {
        "run_id": [str(run_id) for run_id in FlowRun.objects.values_list("id", flat=True)],
        "item_id": [str(item_id) for item_id in ReviewItem.objects.values_list("id", flat=True)],
        "output_type": ["invoice", "article_draft", "outreach_email"],
    }


def _cases(operation: Any, mode: GenerationMode, values: dict[str, list[Any]]) -> st.SearchStrategy:
    generated = operation.as_strategy(generation_mode=mode)
    names = [p.name for p in operation.path_parameters if p.name in values]
    if not names or mode is GenerationMode.NEGATIVE:
        return generated
    existing = st.fixed_dictionaries({name: st.sampled_from(values[name]) for name in names}).flatmap(
        lambda fixed: operation.as_strategy(generation_mode=mode, path_parameters=fixed)
    )
    return st.one_of(existing, generated)


def _exercise(operation: Any, strategy: st.SearchStrategy, call: Callable[[Any], Any]) -> str | None:
    """Run the operation's examples; the first failure's report, or None."""

    @given(case=strategy)
    @settings(
        max_examples=MAX_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        case.validate_response(call(case), checks=CHECKS)

    try:
        run()
    except (Failure, FailureGroup) as error:
        return f"{operation.label}: {error}"
    return None


def _api_failures(user: User) -> list[str]:
    token = api_token_create(user=user)
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", get_wsgi_application(), headers=headers)
    values = _path_values()
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            failure = _exercise(operation, _cases(operation, mode, values), lambda case: case.call(headers=headers))
            if failure:
                failures.append(f"[{user.get_username()}, {mode.value}] {failure}")
    return failures


def test_every_operation_answers_as_documented_and_never_500(seeded):
    # One seeded database for both: a manager, then the seed's invoice reviewer (limited to one output type).
    manager, scoped_reviewer = User.objects.get(username="manager"), User.objects.get(username="finance")
    assert list(scoped_reviewer.review_scopes.values_list("output_type", flat=True)) == ["invoice"]
    failures = _api_failures(manager) + _api_failures(scoped_reviewer)
    assert not failures, "\n\n".join(failures)
    # The per-flow input schemas let generated requests start runs (queued, for a worker).
    assert any(task[0] == "reviewconsole.engine.tasks.run_flow" for task in seeded)
