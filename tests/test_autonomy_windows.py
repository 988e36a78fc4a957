"""Evidence windows: all time, since the last change of routing, and the rolling recent window."""

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings as django_settings

from reviewconsole.autonomy.models import PolicyChange
from reviewconsole.autonomy.services import policy_ensure, policy_update
from reviewconsole.autonomy.windows import WINDOW_KEYS, Window, window_for

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def change_at(output_type: str, changes: dict, at: datetime) -> PolicyChange:
    change = policy_update(output_type=output_type, changes=changes, by=None, reason="window test")
    PolicyChange.objects.filter(pk=change.pk).update(at=at)
    return change


def test_all_time_has_no_start(django_assert_num_queries):
    policy = policy_ensure(output_type="invoice")
    with django_assert_num_queries(0):
        window = window_for(policy, "all", now=NOW)
    assert window == Window("all", None, "all time")


def test_recent_is_the_configured_number_of_days(settings, django_assert_num_queries):
    policy = policy_ensure(output_type="invoice")
    assert django_settings.AUTONOMY_WINDOW_DAYS == 30  # the default
    with django_assert_num_queries(0):
        window = window_for(policy, "recent", now=NOW)
    assert window == Window("recent", NOW - timedelta(days=30), "the last 30 days")
    settings.AUTONOMY_WINDOW_DAYS = 7
    assert window_for(policy, "recent", now=NOW) == Window("recent", NOW - timedelta(days=7), "the last 7 days")
    settings.AUTONOMY_WINDOW_DAYS = 1
    assert window_for(policy, "recent", now=NOW).label == "the last day"


def test_since_change_is_the_last_change_of_routing(django_assert_num_queries):
    policy = policy_ensure(output_type="invoice")
    change_at("invoice", {"threshold": 0.9}, NOW - timedelta(days=20))
    change_at("invoice", {"audit_rate": 0.1}, NOW - timedelta(days=10))
    change_at("invoice", {"always_review": True}, datetime(2026, 12, 3, 9, 30, tzinfo=UTC))
    # A change after `now` is not yet in force as of `now`.
    change_at("invoice", {"always_review": False}, NOW + timedelta(days=1))
    # Another type's change does not move this type's window.
    policy_ensure(output_type="lead")
    change_at("lead", {"threshold": 0.5}, NOW - timedelta(hours=1))
    with django_assert_num_queries(1):
        window = window_for(policy, "since_change", now=NOW)
    assert window == Window(
        "since_change", datetime(2026, 12, 3, 9, 30, tzinfo=UTC), "since the last policy change (3 Dec 2026)"
    )


def test_changes_that_do_not_affect_routing_do_not_move_since_change():
    policy = policy_ensure(output_type="invoice")
    routing = change_at("invoice", {"threshold": 0.9, "sla_minutes": 60}, NOW - timedelta(days=20))
    change_at("invoice", {"reject_reasons": ["wrong_data"]}, NOW - timedelta(days=5))
    change_at("invoice", {"sla_minutes": 30}, NOW - timedelta(days=4))
    change_at("invoice", {"target_accuracy": 0.9, "min_samples": 80, "mode": "auto"}, NOW - timedelta(days=3))
    assert window_for(policy, "since_change", now=NOW).since == NOW - timedelta(days=20)
    assert PolicyChange.objects.get(pk=routing.pk).at == NOW - timedelta(days=20)


def test_a_policy_never_changed_counts_from_its_creation():
    policy = policy_ensure(output_type="invoice")
    created = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
    type(policy).objects.filter(pk=policy.pk).update(created_at=created)
    policy.refresh_from_db()
    change_at("invoice", {"sla_minutes": 30}, NOW - timedelta(days=4))  # not a change of routing
    window = window_for(policy, "since_change", now=NOW)
    assert window == Window("since_change", created, "since the policy was created (2 Nov 2026)")


def test_an_unknown_window_is_refused_by_name():
    policy = policy_ensure(output_type="invoice")
    assert WINDOW_KEYS == ("all", "since_change", "recent")
    with pytest.raises(ValueError, match="'last_week'"):
        window_for(policy, "last_week", now=NOW)


@pytest.mark.parametrize("value", ["0", "-3", "thirty", "1.5"])
def test_the_window_length_must_be_a_positive_whole_number(value):
    env = {**os.environ, "DEBUG": "1", "AUTONOMY_WINDOW_DAYS": value}
    loaded = subprocess.run(
        [sys.executable, "-c", "import reviewconsole.settings"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        cwd=django_settings.BASE_DIR,
    )
    assert loaded.returncode != 0
    assert "ImproperlyConfigured: AUTONOMY_WINDOW_DAYS must be a whole number above zero" in loaded.stderr


def test_the_window_length_comes_from_the_environment():
    env = {**os.environ, "DEBUG": "1", "AUTONOMY_WINDOW_DAYS": " 14 "}
    loaded = subprocess.run(
        [sys.executable, "-c", "import reviewconsole.settings as s; print(s.AUTONOMY_WINDOW_DAYS)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=django_settings.BASE_DIR,
    )
    assert loaded.stdout.strip() == "14"
