"""Autonomy pages: the overview, a type's dashboard and policy controls, the what-if preview, the admin and
the SVG charts. Who may see and change what; changes recorded with their reason; hostile names escaped."""

import html
import json
import re
import xml.etree.ElementTree as ET
from datetime import date, timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from reviewconsole.autonomy import charts, selectors
from reviewconsole.autonomy.forms import PolicyForm
from reviewconsole.autonomy.models import (
    AutonomyPolicy,
    FieldError,
    GateDecision,
    PolicyChange,
    Route,
    Verdict,
)
from reviewconsole.autonomy.recommendation import recommend
from reviewconsole.autonomy.services import PolicyError, policy_ensure, policy_update
from reviewconsole.engine.models import PendingFeedback
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import Decision, ReviewItem, ReviewStatus
from tests.people import client_for
from tests.people import user_in_role as make_user

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
TYPE = "receipt"
OVERVIEW = reverse("autonomy:overview")


@pytest.fixture
def manager() -> User:
    return make_user("mona", "manager")


@pytest.fixture
def reviewer() -> User:
    """A reviewer of receipts only."""
    return make_user("rita", "reviewer", TYPE)


@pytest.fixture
def other_reviewer() -> User:
    """A reviewer of drafts only."""
    return make_user("dan", "reviewer", "draft")


@pytest.fixture
def outsider() -> User:
    """Signed in, may look at runs, may neither review nor manage."""
    user = User.objects.create_user("otto", password="pw")
    user.user_permissions.add(Permission.objects.get(codename="view_flowrun"))
    return user


@pytest.fixture
def mona(manager) -> Client:
    return client_for(manager)


@pytest.fixture
def rita(reviewer) -> Client:
    return client_for(reviewer)


def type_url(output_type: str = TYPE) -> str:
    return reverse("autonomy:type", args=[output_type])


def seed(output_type: str = TYPE, n: int = 60, *, threshold: float | None = None) -> AutonomyPolicy:
    """`n` reviewed outputs spread over confidence, one in five wrong (with a corrected field or a reject
    reason), and as many auto-approved ones; spread over the last few days."""
    policy_ensure(output_type=output_type)
    if threshold is not None:
        policy_update(output_type=output_type, changes={"threshold": threshold}, by=None, reason="set-up")
    rows = []
    for i in range(n):
        wrong = i % 5 == 0
        rows.append(
            GateDecision(
                output_type=output_type,
                confidence=round(0.3 + 0.7 * i / n, 3),
                route=Route.HUMAN_REVIEW,
                reason="low_confidence",
                verdict=Verdict.INCORRECT if wrong else Verdict.CORRECT,
                reject_reason="wrong_data" if wrong and i % 2 else "",
                error_fields=["total_amount"] if wrong and not i % 2 else [],
                verdict_at=timezone.now(),
            )
        )
        rows.append(GateDecision(output_type=output_type, confidence=0.95, route=Route.AUTO_APPROVED))
    created = GateDecision.objects.bulk_create(rows)
    FieldError.objects.bulk_create(
        FieldError(gate_decision=d, output_type=output_type, field=f) for d in created for f in d.error_fields
    )
    for offset, decision in enumerate(created):
        GateDecision.objects.filter(id=decision.id).update(
            created_at=timezone.now() - timedelta(days=offset % 4, hours=1)
        )
    return AutonomyPolicy.objects.get(output_type=output_type)


def policy_data(policy: AutonomyPolicy, reason: str = "Audits hold up", **changes) -> dict[str, str]:
    """The policy form as a browser posts it, with `changes` applied."""
    values = {**PolicyForm.initial_for(policy), "reason": reason, **changes}
    if changes.get("threshold") and "review_all" not in changes:
        values["review_all"] = False  # a threshold typed in, as the page's script does
    data = {}
    for key, value in values.items():
        if isinstance(value, bool):
            if value:
                data[key] = "on"
        elif value is None:
            data[key] = ""
        elif isinstance(value, list):
            data[key] = value  # ticked checkboxes: one value each
        else:
            data[key] = str(value)
    return data


# ---------------------------------------------------------------- who sees what


def test_anonymous_users_are_sent_to_the_login_page():
    policy_ensure(output_type=TYPE)
    for url in (OVERVIEW, type_url()):
        response = Client().get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_manager_sees_the_dashboard_and_the_controls(mona):
    seed(threshold=0.8)
    response = mona.get(type_url())
    assert response.status_code == 200
    content = response.content.decode()
    for part in ("chart--calibration", "chart--trend", "chart--recommendation", 'id="policy-form"', 'id="what-if"'):
        assert part in content
    assert "Apply change" in content
    # The current threshold is previewed.
    assert re.search(r"What threshold <span class=\"mono\">0\.80</span> would have done", content)
    assert "total_amount" in content and "wrong_data" in content
    assert 'name="reason"' in content


def test_reviewer_of_the_type_sees_the_dashboard_read_only(rita):
    seed()
    content = rita.get(type_url()).content.decode()
    assert "chart--calibration" in content
    assert 'id="policy-form"' not in content
    assert 'id="what-if"' not in content
    assert "Change policy" not in content


@pytest.mark.parametrize("who", ["other_reviewer", "outsider"])
def test_others_may_neither_see_nor_change_a_type(request, who):
    policy = seed()
    client = client_for(request.getfixturevalue(who))
    assert client.get(type_url()).status_code == 403
    assert client.get(type_url(), {"threshold": "0.5"}, headers={**HTMX, "HX-Target": "what-if"}).status_code == 403
    assert client.post(type_url(), policy_data(policy, threshold="0.5")).status_code == 403
    assert not PolicyChange.objects.filter(by__isnull=False).exists()


def test_reviewer_post_is_refused_and_changes_nothing(rita):
    policy = seed()
    response = rita.post(type_url(), policy_data(policy, threshold="0.5"))
    assert response.status_code == 403
    assert AutonomyPolicy.objects.get(output_type=TYPE).threshold is None
    assert not PolicyChange.objects.exists()


def test_reviewer_gets_no_what_if(rita):
    seed()
    response = rita.get(type_url(), {"threshold": "0.5"}, headers={**HTMX, "HX-Target": "what-if"})
    assert response.status_code == 403


def test_unknown_type_is_404_and_a_type_a_flow_declares_gets_its_policy(mona, rita):
    assert mona.get(type_url("no_such_type")).status_code == 404
    # A reviewer is refused before the lookup, so the answer does not tell which types exist.
    assert rita.get(type_url("no_such_type")).status_code == 403
    assert not AutonomyPolicy.objects.filter(output_type="invoice").exists()
    assert mona.get(type_url("invoice")).status_code == 200  # declared by the invoice flow
    assert AutonomyPolicy.objects.get(output_type="invoice").threshold is None


def test_overview_lists_every_type_for_managers_and_a_reviewers_own(mona, rita, outsider, other_reviewer):
    seed(TYPE, threshold=0.8)
    seed("draft", n=10)
    content = mona.get(OVERVIEW).content.decode()
    assert type_url(TYPE) in content and type_url("draft") in content
    assert "chart--types" in content and content.count("chart--spark") == 2
    assert re.search(r'<span class="mono">0\.80</span>', content)

    mine = rita.get(OVERVIEW).content.decode()
    assert type_url(TYPE) in mine and type_url("draft") not in mine
    theirs = client_for(other_reviewer).get(OVERVIEW).content.decode()
    assert type_url("draft") in theirs and type_url(TYPE) not in theirs
    assert client_for(outsider).get(OVERVIEW).status_code == 403


def test_overview_shows_rates_with_intervals_and_the_queue(mona):
    seed(n=20)
    row = selectors.overview()[0]
    content = mona.get(OVERVIEW).content.decode()
    assert f"{row['accuracy'] * 100:.1f}%" in content
    assert f"{row['ci_low'] * 100:.1f}\u2013{row['ci_high'] * 100:.1f}%" in content
    assert f"n={row['reviewed']}" in content
    assert f"{row['autonomy_rate'] * 100:.1f}%" in content


def test_nav_shows_autonomy_to_managers_and_reviewers_only(mona, rita, outsider):
    link = f'href="{OVERVIEW}"'
    assert link in mona.get(reverse("engine:run_list")).content.decode()
    assert link in rita.get(reverse("engine:run_list")).content.decode()
    assert link not in client_for(outsider).get(reverse("engine:run_list")).content.decode()


# ---------------------------------------------------------------- fragments


def test_what_if_fragment_previews_a_threshold(mona):
    seed(threshold=0.8)
    response = mona.get(type_url(), {"threshold": "0.5"}, headers={**HTMX, "HX-Target": "what-if"})
    assert response.status_code == 200
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="what-if"')
    assert "<html" not in content
    assert "What threshold <span" in content and "0.50" in content
    assert "Errors expected to pass" in content
    # Beside the preview, what the current threshold does.
    assert re.search(r"Now, at <span class=\"mono\">0\.80</span>", content)
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize("threshold", ["1.5", "-0.1", "lots", ""])
def test_what_if_refuses_a_threshold_outside_0_and_1(mona, threshold):
    seed()
    response = mona.get(type_url(), {"threshold": threshold}, headers={**HTMX, "HX-Target": "what-if"})
    assert response.status_code == 422
    assert "between 0 and 1" in response.content.decode()


def test_full_page_with_a_threshold_previews_it_in_the_form(mona):
    seed()
    content = mona.get(type_url(), {"threshold": "0.7"}).content.decode()
    assert re.search(r'name="threshold"[^>]*value="0\.7"', content, re.S)
    assert 'What threshold <span class="mono">0.70</span>' in content


def test_trend_fragment_switches_to_weeks(rita):
    seed()
    response = rita.get(type_url(), {"period": "week"}, headers={**HTMX, "HX-Target": "trend-panel"})
    content = response.content.decode()
    assert response.status_code == 200
    assert content.lstrip().startswith('<section id="trend-panel"')
    assert "Numbers by week" in content and "chart--trend" in content
    # An unknown period falls back to days.
    assert "Numbers by day" in rita.get(type_url(), {"period": "year"}).content.decode()


# ---------------------------------------------------------------- applying a change


def test_apply_with_a_reason_records_the_change_and_shows_it(mona, manager):
    policy = seed()
    response = mona.post(type_url(), policy_data(policy, "Audited accuracy holds", threshold="0.75", audit_rate="0.1"))
    assert response.status_code == 302
    assert response["Location"] == type_url()
    policy.refresh_from_db()
    assert (policy.threshold, policy.audit_rate) == (0.75, 0.1)
    change = PolicyChange.objects.get(policy=policy)
    assert change.by == manager and not change.automatic
    assert change.changes == {"threshold": [None, 0.75], "audit_rate": [0.05, 0.1]}
    assert change.reason == "Audited accuracy holds"

    content = mona.get(type_url()).content.decode()
    assert "changed: threshold none → 0.75; audit_rate 0.05 → 0.1" in content  # the message
    history = re.search(r'<table class="table table--compact history-table">.*?</table>', content, re.S)[0]
    assert "mona" in history and "Audited accuracy holds" in history and "threshold" in history


def test_apply_through_htmx_swaps_the_body_with_a_confirmation(mona):
    policy = seed()
    response = mona.post(type_url(), policy_data(policy, threshold="0.9"), headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Retarget"] == "#type-body"
    content = response.content.decode()
    assert content.lstrip().startswith('<div id="type-body"')
    assert "Policy of receipt changed: threshold none → 0.9." in content
    assert AutonomyPolicy.objects.get(output_type=TYPE).threshold == 0.9


def test_apply_without_a_reason_is_refused_at_the_field(mona):
    policy = seed()
    response = mona.post(type_url(), policy_data(policy, reason="   ", threshold="0.5"))
    assert response.status_code == 422
    content = response.content.decode()
    assert re.search(r'field--error">\s*<label class="field__label" for="id_reason"', content)
    assert "This field is required." in content or "Say why" in content
    assert AutonomyPolicy.objects.get(output_type=TYPE).threshold is None
    assert not PolicyChange.objects.exists()


def test_refused_change_through_htmx_replaces_only_the_form(mona):
    policy = seed()
    response = mona.post(type_url(), policy_data(policy, reason=""), headers=HTMX)
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#policy-form"
    assert response.content.decode().lstrip().startswith('<form id="policy-form"')


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"audit_rate": "-0.2"}, "audit_rate", "greater than or equal to 0"),
        ({"auto_min_threshold": "0.9", "auto_max_threshold": "0.6"}, "auto_max_threshold", "must not be below"),
        ({"min_samples": "0"}, "min_samples", "greater than or equal to 1"),
        ({"reject_reasons": " \n "}, "reject_reasons", "This field is required"),
        ({"reject_reasons": "x" * 101}, "reject_reasons", "longer than 100 characters"),
        ({"mode": "yolo"}, "mode", "Select a valid choice"),
    ],
)
def test_invalid_values_are_refused_at_their_field(mona, changes, field, message):
    policy = seed()
    response = mona.post(type_url(), policy_data(policy, **changes))
    assert response.status_code == 422
    content = response.content.decode()
    pattern = rf'<div class="field field--error[^"]*">\s*<label class="field__label" for="id_{field}".*?</div>'
    block = re.search(pattern, content, re.S)
    assert block and message in block[0]
    assert not PolicyChange.objects.exists()


def test_a_threshold_above_1_is_refused_at_the_threshold(mona):
    policy = seed()
    response = mona.post(type_url(), policy_data(policy, threshold="1.5"))
    assert response.status_code == 422
    content = response.content.decode()
    assert 'class="threshold-control field--error"' in content
    assert "less than or equal to 1" in content
    assert not PolicyChange.objects.exists()


def test_an_empty_threshold_needs_review_everything_ticked(mona):
    policy = seed(threshold=0.8)
    response = mona.post(type_url(), policy_data(policy, threshold="", review_all=False))
    assert response.status_code == 422
    assert "tick “Review everything”" in response.content.decode()
    back = policy_data(policy, threshold="0.8", review_all=True, reason="Back to full review")
    response = mona.post(type_url(), back)
    assert response.status_code == 302
    assert AutonomyPolicy.objects.get(output_type=TYPE).threshold is None


def test_applying_the_same_values_changes_nothing(mona):
    policy = seed()
    response = mona.post(type_url(), policy_data(policy), follow=True)
    assert "Nothing changed" in response.content.decode()
    assert not PolicyChange.objects.exists()


def test_reject_reasons_are_one_per_line(mona):
    policy = seed()
    mona.post(type_url(), policy_data(policy, reject_reasons="duplicate\nwrong_data\n\nduplicate, other"))
    assert AutonomyPolicy.objects.get(output_type=TYPE).reject_reasons == ["duplicate", "wrong_data", "other"]


def test_policy_error_names_its_field():
    def field_of(changes, reason="why"):
        with pytest.raises(PolicyError) as error:
            policy_update(output_type=TYPE, changes=changes, by=None, reason=reason)
        return error.value.field

    assert field_of({"threshold": 1.5}) == "threshold"
    assert field_of({"audit_rate": -0.1}) == "audit_rate"
    assert field_of({"threshold": 0.5}, reason=" ") == "reason"
    assert field_of({"colour": "red", "size": 1}) == "colour"


# ---------------------------------------------------------------- history


def test_history_shows_who_when_what_why_and_the_evidence(mona, manager):
    policy = seed()
    policy_update(output_type=TYPE, changes={"threshold": 0.8}, by=manager, reason="First grant")
    policy_update(
        output_type=TYPE,
        changes={"threshold": None},
        by=None,
        reason="Regression guard: accuracy fell",
        automatic=True,
        evidence={"kind": "regression_guard", "window": {"n": 40}},
    )
    content = mona.get(type_url()).content.decode()
    history = re.search(r'<table class="table table--compact history-table">.*?</table>', content, re.S)[0]
    rows = re.findall(r'<tr id="change-\d+">.*?</tr>', history, re.S)
    assert len(rows) == 2
    newest, oldest = rows
    assert "automatic" in newest and "Regression guard: accuracy fell" in newest
    assert "<details" in newest and "&quot;regression_guard&quot;" in newest
    assert "mona" in oldest and "First grant" in oldest and "0.8" in oldest
    assert policy.pk


# ---------------------------------------------------------------- escaping


def test_hostile_type_names_reasons_and_fields_are_escaped(mona, manager):
    seed(HOSTILE, n=10)
    policy_update(output_type=HOSTILE, changes={"reject_reasons": [HOSTILE]}, by=manager, reason=f"because {HOSTILE}")
    FieldError.objects.create(
        gate_decision=GateDecision.objects.filter(output_type=HOSTILE).first(), output_type=HOSTILE, field=HOSTILE
    )
    for url in (OVERVIEW, type_url(HOSTILE)):
        content = mona.get(url).content.decode()
        assert HOSTILE not in content
        assert ESCAPED in content
    api = mona.get(type_url(HOSTILE), {"period": "week"}, headers={**HTMX, "HX-Target": "trend-panel"})
    assert HOSTILE not in api.content.decode()


# ---------------------------------------------------------------- query counts


def add_review(output_type: str, user: User) -> None:
    run = run_create(flow_name="counter", inputs={})
    pending = PendingFeedback.objects.create(flow_uuid=str(run.id), method="review", context={}, state={})
    item = ReviewItem.objects.create(
        run=run,
        pending=pending,
        method="review",
        output_type=output_type,
        output={},
        outcomes=["approved", "rejected"],
        status=ReviewStatus.DECIDED,
        decided_at=timezone.now(),
    )
    Decision.objects.create(item=item, outcome="approved", user=user)


def test_type_page_query_count_does_not_grow_with_data(mona, manager, django_assert_num_queries):
    seed(n=5, threshold=0.8)
    add_review(TYPE, manager)  # a decided item: the median time to decision is one more query
    with CaptureQueriesContext(connection) as small:
        mona.get(type_url())
    seed(n=200)
    for n in range(6):
        policy_update(output_type=TYPE, changes={"audit_rate": 0.01 * (n + 2)}, by=manager, reason=f"change {n}")
        add_review(TYPE, make_user(f"reviewer{n}", "reviewer"))
    FieldError.objects.bulk_create(
        FieldError(gate_decision=GateDecision.objects.filter(output_type=TYPE).first(), output_type=TYPE, field=f"f{n}")
        for n in range(8)
    )
    with django_assert_num_queries(len(small.captured_queries)):
        content = mona.get(type_url()).content.decode()
    assert "change 5" in content and "f7" in content


def test_reviewing_panel_loads_after_the_page_with_constant_queries(mona, manager, django_assert_num_queries):
    seed(n=5, threshold=0.8)
    add_review(TYPE, manager)
    page = mona.get(type_url()).content.decode()
    # The page holds a placeholder that fetches the panel once it is shown.
    assert 'id="reviewing-panel" hx-get="' in page and 'hx-trigger="load"' in page
    assert "Reviewer throughput" not in page

    fragment = {**HTMX, "HX-Target": "reviewing-panel"}
    with CaptureQueriesContext(connection) as small:
        mona.get(type_url(), headers=fragment)
    for n in range(6):
        add_review(TYPE, make_user(f"reviewer{n}", "reviewer"))
    with django_assert_num_queries(len(small.captured_queries)):
        content = mona.get(type_url(), headers=fragment).content.decode()
    assert content.lstrip().startswith('<div id="reviewing-panel">')
    assert (
        "Reviewer throughput" in content
        and "reviewer5" in content
        and "Median queue wait" in content
        and "Median handling time" in content
    )
    assert "<html" not in content


def test_reviewing_panel_needs_permission_to_see_the_type(client):
    seed(n=2)
    client.force_login(make_user("nobody", None))
    assert client.get(type_url(), headers={**HTMX, "HX-Target": "reviewing-panel"}).status_code in (403, 404)


def test_overview_query_count_does_not_grow_with_types(mona, django_assert_num_queries):
    seed("type_0", n=5)
    with CaptureQueriesContext(connection) as one:
        mona.get(OVERVIEW)
    for n in range(1, 8):
        seed(f"type_{n}", n=5)
    with django_assert_num_queries(len(one.captured_queries)):
        content = mona.get(OVERVIEW).content.decode()
    assert content.count("chart--spark") == 8


# ---------------------------------------------------------------- admin


@pytest.fixture
def staff_manager(manager) -> Client:
    manager.is_staff = True
    manager.save()
    return client_for(manager)


def test_admin_policies_are_for_managers_only(staff_manager, reviewer):
    policy = seed()
    change_url = reverse("admin:autonomy_autonomypolicy_change", args=[policy.pk])
    assert staff_manager.get(reverse("admin:autonomy_autonomypolicy_changelist")).status_code == 200
    assert staff_manager.get(change_url).status_code == 200
    reviewer.is_staff = True
    reviewer.save()
    staff_reviewer = client_for(reviewer)
    assert staff_reviewer.get(change_url).status_code == 403
    assert staff_reviewer.get(reverse("admin:autonomy_gatedecision_changelist")).status_code == 403
    assert "autonomy" not in staff_reviewer.get(reverse("admin:index")).content.decode().lower()


def admin_data(policy: AutonomyPolicy, **changes) -> dict[str, str]:
    data = policy_data(policy, **changes)
    data["reject_reasons"] = '["wrong_data", "other"]'
    data["four_eyes_reasons"] = json.dumps(policy.four_eyes_reasons)
    data.pop("review_all", None)
    data.update({"changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0", "changes-MIN_NUM_FORMS": "0"})
    data["changes-MAX_NUM_FORMS"] = "0"
    return data


def test_admin_change_goes_through_policy_update_with_a_reason(staff_manager, manager):
    policy = seed()
    change_url = reverse("admin:autonomy_autonomypolicy_change", args=[policy.pk])
    refused = staff_manager.post(change_url, admin_data(policy, reason="", threshold="0.7"))
    assert refused.status_code == 200 and "This field is required" in refused.content.decode()
    assert not PolicyChange.objects.exists()

    response = staff_manager.post(change_url, admin_data(policy, reason="From the admin", threshold="0.7"))
    assert response.status_code == 302, response.content.decode()[:2000]
    change = PolicyChange.objects.get()
    assert (change.by, change.reason) == (manager, "From the admin")
    assert change.changes["threshold"] == [None, 0.7]
    assert change.changes["reject_reasons"] == [
        ["wrong_data", "incomplete", "not_applicable", "other"],
        ["wrong_data", "other"],
    ]
    assert "From the admin" in staff_manager.get(change_url).content.decode()  # the read-only history inline


def test_admin_gate_decisions_are_read_only(staff_manager):
    seed(n=3)
    decision = GateDecision.objects.first()
    assert staff_manager.get(reverse("admin:autonomy_gatedecision_changelist")).status_code == 200
    content = staff_manager.get(reverse("admin:autonomy_gatedecision_change", args=[decision.pk])).content.decode()
    assert 'type="submit"' not in content or "Save" not in content
    assert staff_manager.get(reverse("admin:autonomy_gatedecision_add")).status_code == 403


def test_a_manager_limited_to_some_types_sees_and_changes_those_only():
    receipts = seed()
    drafts = seed("draft", n=10)
    scoped = make_user("fran", "manager", TYPE)
    scoped.is_staff = True
    scoped.save()
    client = client_for(scoped)
    overview = client.get(OVERVIEW).content.decode()
    assert type_url(TYPE) in overview and type_url("draft") not in overview
    assert client.get(type_url(TYPE)).status_code == 200
    assert client.get(type_url("draft")).status_code == 403
    assert client.post(type_url("draft"), policy_data(drafts, threshold="0.5")).status_code == 403
    # The admin: the other type's policy and gate decisions are missing; no policy may be added for it.
    changelist = client.get(reverse("admin:autonomy_autonomypolicy_changelist")).content.decode()
    assert reverse("admin:autonomy_autonomypolicy_change", args=[receipts.pk]) in changelist
    assert reverse("admin:autonomy_autonomypolicy_change", args=[drafts.pk]) not in changelist
    change_url = reverse("admin:autonomy_autonomypolicy_change", args=[drafts.pk])
    assert client.post(change_url, admin_data(drafts, reason="x", threshold="0.5")).status_code == 302
    other_decision = GateDecision.objects.filter(output_type="draft").first()
    assert client.get(reverse("admin:autonomy_gatedecision_change", args=[other_decision.pk])).status_code == 302
    new = {**admin_data(AutonomyPolicy(), reason="x"), "output_type": "invoice"}
    added = client.post(reverse("admin:autonomy_autonomypolicy_add"), new)
    assert added.status_code == 200 and "You may not manage this output type." in added.content.decode()
    assert not PolicyChange.objects.filter(by=scoped).exists()
    assert not AutonomyPolicy.objects.filter(output_type="invoice").exists()


# ---------------------------------------------------------------- charts


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("role") == "img"
    return root


def texts(root: ET.Element) -> str:
    return " ".join(t for t in root.itertext())


def test_calibration_chart_parses_and_has_the_numbers():
    seed(n=100)
    bands = selectors.calibration(TYPE)
    svg = charts.calibration_chart(bands, target=0.95, threshold=0.8, output_type=TYPE)
    root = parse(svg)
    content = texts(root)
    band = next(b for b in bands if b["n"])
    assert f"accuracy {band['accuracy'] * 100:.1f}%" in content
    assert f"of {band['n']} right" in content
    assert "target 95%" in content and "threshold 0.80" in content
    assert "Confidence" in content and "Accuracy" in content
    assert "style=" not in svg


def test_charts_with_no_data_say_so():
    for svg, message in [
        (charts.calibration_chart([], target=0.95), "No reviewed outputs yet"),
        (charts.trend_chart([]), "No outputs yet"),
        (charts.recommendation_chart([], target=0.95), "No reviewed outputs"),
        (charts.types_chart([]), "No output types yet"),
    ]:
        assert message in texts(parse(svg))
    parse(charts.sparkline([]))


def test_trend_recommendation_types_and_sparkline_charts_parse_with_numbers():
    policy = seed(n=80, threshold=0.7)
    rows = selectors.trend(TYPE, "day")
    root = parse(charts.trend_chart(rows, period="day", target=0.95, output_type=TYPE))
    last = rows[-1]
    assert f"{last['period']:%Y-%m-%d}" in texts(root)
    assert f"{last['auto']} of {last['total']}" in texts(root)
    week = parse(charts.trend_chart(selectors.trend(TYPE, "week"), period="week"))
    assert "Week starting" in texts(week)

    rec = recommend(TYPE, policy=policy)
    root = parse(charts.recommendation_chart(rec["evidence"], target=0.8, chosen=rec["threshold"], current=0.7))
    candidate = rec["evidence"][0]
    assert f"Threshold {candidate['threshold']:.2f}: {candidate['accuracy'] * 100:.1f}%" in texts(root)

    overview = selectors.overview()
    root = parse(charts.types_chart(overview))
    assert f"accuracy {overview[0]['accuracy'] * 100:.1f}%" in texts(root)
    spark = [{"period": date(2026, 1, d), "total": 4, "autonomy_rate": 0.5, "accuracy": 0.9} for d in (1, 2, 3)]
    assert "auto-processed 50.0%" in texts(parse(charts.sparkline(spark, output_type=TYPE)))


def test_charts_escape_hostile_type_names():
    row = {
        "output_type": HOSTILE,
        "target_accuracy": 0.95,
        "accuracy": 0.9,
        "ci_low": 0.8,
        "ci_high": 0.95,
        "reviewed": 10,
        "auto_accuracy_estimate": None,
        "auto_accuracy_ci_low": None,
        "auto_accuracy_ci_high": None,
        "auto_accuracy_n_eff": 0.0,
        "autonomy_rate": 0.5,
        "autonomy_ci_low": 0.3,
        "autonomy_ci_high": 0.7,
        "total": 20,
    }
    for svg in (
        charts.types_chart([row]),
        charts.calibration_chart([], target=0.9, output_type=HOSTILE),
        charts.trend_chart([], output_type=HOSTILE),
        charts.sparkline([], output_type=HOSTILE),
        charts.recommendation_chart([], target=0.9, output_type=HOSTILE),
    ):
        assert HOSTILE not in svg
        assert ESCAPED in svg
        root = parse(svg)
        assert not root.findall(".//{http://www.w3.org/2000/svg}script")
        assert HOSTILE in texts(root)  # the text itself survives, as text


# ---------------------------------------------------------------- words, windows, forced reviews


def test_page_states_the_guarantee_and_the_evidence_still_needed(mona):
    seed(n=60)  # 48 of 60 right: nothing passes at a 95% target
    rec = recommend(TYPE)
    assert rec["threshold"] is None and rec["needed"] is not None
    content = mona.get(type_url()).content.decode()
    assert "With 95% confidence, the outputs at or above a recommended threshold" in content
    assert "outputs are independent, audits are drawn at random, and accuracy did not drift" in content
    needed = rec["needed"]
    sentence = f"{needed['correct']} more correct verdicts on outputs with confidence ≥ {needed['threshold']:.2f}"
    assert html.escape(sentence) in content or sentence in content


def test_window_choice_changes_the_figures_and_says_which_window(mona):
    seed(n=60, threshold=0.8)  # created over the last four days
    old = GateDecision.objects.bulk_create(
        GateDecision(
            output_type=TYPE,
            confidence=0.99,
            route=Route.HUMAN_REVIEW,
            reason="low_confidence",
            verdict=Verdict.CORRECT,
            verdict_at=timezone.now(),
        )
        for _ in range(40)
    )
    GateDecision.objects.filter(id__in=[d.id for d in old]).update(created_at=timezone.now() - timedelta(days=400))
    everything = mona.get(type_url()).context
    recent = mona.get(type_url(), {"window": "recent"}).context
    assert everything["window"].key == "all" and recent["window"].key == "recent"
    assert everything["summary"]["reviewed"] == 100 and recent["summary"]["reviewed"] == 60
    assert everything["rec"]["reviewed"] == 100 and recent["rec"]["reviewed"] == 60
    assert sum(b["n"] for b in everything["bands"]) == 100 and sum(b["n"] for b in recent["bands"]) == 60
    content = mona.get(type_url(), {"window": "recent"}).content.decode()
    assert f"<strong data-window-label>{recent['window'].label}</strong>" in content
    assert recent["window"].label.startswith("the last ")
    assert f"From verdicts over {recent['window'].label}." in content
    since_change = mona.get(type_url(), {"window": "since_change"})
    assert "since the last policy change" in since_change.context["window"].label
    # The estimate for auto-processed outputs reads the recent window when all time is shown.
    assert everything["estimate_window"].key == "recent"
    assert f"over {everything['estimate_window'].label}" in mona.get(type_url()).content.decode()


@pytest.mark.parametrize("window", ["forever", "", "ALL", "<script>"])
def test_an_unknown_window_reads_the_default(mona, window):
    seed()
    response = mona.get(type_url(), {"window": window})
    assert response.status_code == 200
    assert response.context["window"].key == "all"


def test_what_if_fragment_reads_the_window_asked_for(mona):
    seed(threshold=0.8)
    GateDecision.objects.filter(output_type=TYPE).update(created_at=timezone.now() - timedelta(days=400))
    headers = {**HTMX, "HX-Target": "what-if"}
    recent = mona.get(type_url(), {"threshold": "0.5", "window": "recent"}, headers=headers)
    everything = mona.get(type_url(), {"threshold": "0.5"}, headers=headers)
    assert "Over the 0 outputs of this type over the last" in recent.content.decode()
    assert "Over the 120 outputs of this type over all time" in everything.content.decode()
    assert 'id="what-if-window"' in mona.get(type_url(), {"window": "recent"}).content.decode()


def test_page_shows_forced_reviews_apart_and_the_guard_in_words(mona):
    policy = seed(threshold=0.8)
    GateDecision.objects.bulk_create(
        GateDecision(
            output_type=TYPE,
            confidence=0.97,
            route=Route.HUMAN_REVIEW,
            reason="high_value",
            forced=True,
            verdict=Verdict.CORRECT if i < 3 else Verdict.INCORRECT,
            verdict_at=timezone.now(),
        )
        for i in range(5)
    )
    response = mona.get(type_url())
    summary = response.context["summary"]
    assert (summary["forced"], summary["forced_reviewed"], summary["forced_correct"]) == (5, 5, 3)
    assert summary["reviewed"] == 60  # the forced ones are not among them
    content = response.content.decode()
    assert "Forced reviews" in content and "3 of 5 right" in content
    guard = response.context["guard"]
    assert guard["active"] and guard["threshold"] == policy.threshold
    assert f"the monitor stands at {guard['statistic']} of the {guard['limit']}" in content
