"""API bearer tokens: expiry, revocation and the lockout of an address that guesses them."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.utils import timezone

from reviewconsole.engine import tokens
from reviewconsole.engine.models import ApiToken
from reviewconsole.engine.tokens import api_token_create
from tests.people import user_with_engine_perms

pytestmark = pytest.mark.django_db

URL = "/api/v1/flows"


@pytest.fixture
def olga() -> User:
    return user_with_engine_perms("olga", "view_flowrun")


def get(token: str, address: str = "127.0.0.1"):
    return Client(REMOTE_ADDR=address).get(URL, headers={"Authorization": f"Bearer {token}"})


def command(name: str, *args: str) -> list[str]:
    out = io.StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue().splitlines()


# --- expiry ------------------------------------------------------------------------------------------------------


def test_an_expired_token_answers_401(olga):
    token = api_token_create(user=olga, expires_in=timedelta(days=1))
    assert get(token).status_code == 200

    ApiToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    assert get(token).status_code == 401


def test_create_api_token_expires_days_sets_the_expiry(olga):
    before = timezone.now()
    lines = command("create_api_token", "olga", "--expires-days", "7")

    stored = ApiToken.objects.get()
    assert before + timedelta(days=7) <= stored.expires_at <= timezone.now() + timedelta(days=7)
    assert "expires in 7 days" in lines[0] and stored.prefix in lines[0]
    assert get(lines[-1]).status_code == 200


def test_without_expires_days_a_token_works_until_revoked(olga):
    command("create_api_token", "olga")
    assert ApiToken.objects.get().expires_at is None


@pytest.mark.parametrize("days", ["0", "-3", "soon"])
def test_expires_days_must_be_a_positive_whole_number(olga, days):
    with pytest.raises(CommandError, match=f"--expires-days: '{days}' is not a whole number of days, 1 or more"):
        call_command("create_api_token", "olga", "--expires-days", days)
    assert not ApiToken.objects.exists()


# --- revocation ----------------------------------------------------------------------------------------------


def test_revoke_by_prefix_stops_that_token_only(olga):
    revoked, kept = api_token_create(user=olga), api_token_create(user=olga)

    assert command("revoke_api_token", revoked[:8]) == [f"Revoked API token {revoked[:8]}… of olga"]

    assert get(revoked).status_code == 401
    assert get(kept).status_code == 200


def test_no_token_starts_with_a_dash_which_the_command_line_would_take_for_an_option(olga, monkeypatch):
    drawn = iter(["-starts-like-an-option", "AbCd1234-and-the-rest"])
    monkeypatch.setattr(tokens.secrets, "token_urlsafe", lambda nbytes: next(drawn))

    token = api_token_create(user=olga)

    assert token == "AbCd1234-and-the-rest"
    assert command("revoke_api_token", token[:8]) == ["Revoked API token AbCd1234… of olga"]


def test_revoke_user_stops_all_of_that_users_tokens(olga):
    other = user_with_engine_perms("otto", "view_flowrun")
    olgas = [api_token_create(user=olga), api_token_create(user=olga)]
    ottos = api_token_create(user=other)

    assert len(command("revoke_api_token", "--user", "olga")) == 2

    assert [get(token).status_code for token in olgas] == [401, 401]
    assert get(ottos).status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Give a token prefix, or --user USERNAME"),
        (("nosuchpr",), "No API token with prefix 'nosuchpr'"),
        (("--user", "ghost"), "No user named 'ghost'"),
        (("--user", "olga"), "User 'olga' has no API tokens"),
    ],
)
def test_revoke_says_what_it_could_not_find(olga, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("revoke_api_token", *args)


# --- guessing ------------------------------------------------------------------------------------------------


@pytest.fixture
def limit(settings) -> int:
    settings.API_TOKEN_FAILURE_LIMIT = 3
    return 3


def test_an_address_that_sends_wrong_tokens_is_locked_out_with_429(olga, limit, settings):
    token = api_token_create(user=olga)
    for guess in range(limit - 1):
        assert get(f"guess-{guess}").status_code == 401

    locked = get("one-guess-too-many")

    assert locked.status_code == 429
    assert locked["Retry-After"] == str(settings.LOGIN_COOLOFF_SECONDS)
    assert "Too many failed API tokens" in locked.json()["detail"]
    # While locked, wrong tokens from that address are refused; from elsewhere they are only wrong. A right
    # token still works: it cannot be guessed, and other clients behind the same address must not be locked out.
    assert get("another-guess").status_code == 429
    assert get("another-guess", address="10.9.8.7").status_code == 401
    assert get(token).status_code == 200


def test_the_lockout_ends_after_the_cooloff(olga, limit, settings, monkeypatch):
    for guess in range(limit):
        get(f"guess-{guess}")
    assert get("still-guessing").status_code == 429

    later = time.time() + settings.LOGIN_COOLOFF_SECONDS + 1
    monkeypatch.setattr(tokens, "time", type("Clock", (), {"time": staticmethod(lambda: later)}))

    assert get("still-guessing").status_code == 401


def test_good_tokens_and_browser_sessions_are_not_counted(olga, limit):
    token = api_token_create(user=olga)
    for _ in range(limit * 2):
        assert get(token).status_code == 200
    session = Client()
    session.force_login(olga)
    assert all(session.get(URL).status_code == 200 for _ in range(limit * 2))
    assert get("a-first-wrong-token").status_code == 401
