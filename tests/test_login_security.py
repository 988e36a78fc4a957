"""Logging in: throttled guessing on both login pages, password rules, the secret key and https cookies."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from tests.settings_env import settings_under

LOGIN_PAGES = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def staff(django_user_model) -> User:
    # Staff, so that a correct login to the admin succeeds too.
    return django_user_model.objects.create_user("stella", password="a good long passphrase", is_staff=True)


def log_in(client: Client, page: str, password: str, username: str = "stella"):
    return client.post(page, {"username": username, "password": password})


def logged_in(response) -> bool:
    return response.status_code == 302 and "_auth_user_id" in response.wsgi_request.session


def guess_until_locked_out(client: Client, page: str, username: str = "stella"):
    """Wrong passwords up to the limit: each before it is an ordinary form error; returns the last answer."""
    for attempt in range(1, settings.LOGIN_FAILURE_LIMIT):
        response = log_in(client, page, f"guess {attempt}", username)
        assert response.status_code == 200, attempt
        assert response.context["form"].errors, attempt
    return log_in(client, page, "one guess too many", username)


def end_cooloff() -> None:
    """Age every recorded failure past the cool-off, as waiting it out would."""
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(seconds=settings.LOGIN_COOLOFF_SECONDS + 1))


# --- brute force ------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("page", LOGIN_PAGES)
def test_guessing_a_password_is_locked_out_with_429_until_the_cooloff_ends(page, staff):
    client = Client()

    locked = guess_until_locked_out(client, page)

    assert locked.status_code == 429
    assert locked["Retry-After"] == str(settings.LOGIN_COOLOFF_SECONDS)
    assert "Too many failed logins" in locked.content.decode()
    # Even the right password is refused while locked, so a guess that hits tells nothing.
    assert log_in(client, page, "a good long passphrase").status_code == 429

    end_cooloff()
    assert logged_in(log_in(client, page, "a good long passphrase"))


@pytest.mark.django_db
def test_a_lockout_holds_for_that_username_from_that_address_only(staff, django_user_model):
    django_user_model.objects.create_user("otto", password="another long passphrase")
    assert guess_until_locked_out(Client(), "/accounts/login/").status_code == 429

    # The same user from elsewhere, and another user from the same address, are not locked out.
    assert logged_in(log_in(Client(REMOTE_ADDR="10.1.2.3"), "/accounts/login/", "a good long passphrase"))
    assert logged_in(log_in(Client(), "/accounts/login/", "another long passphrase", username="otto"))


@pytest.mark.django_db
def test_axes_reset_unlocks(staff):
    client = Client()
    assert guess_until_locked_out(client, "/accounts/login/").status_code == 429

    call_command("axes_reset", verbosity=0)

    assert logged_in(log_in(client, "/accounts/login/", "a good long passphrase"))


@pytest.mark.django_db
def test_a_successful_login_clears_earlier_failures(staff):
    client = Client()
    for attempt in range(settings.LOGIN_FAILURE_LIMIT - 1):
        log_in(client, "/accounts/login/", f"typo {attempt}")
    assert logged_in(log_in(client, "/accounts/login/", "a good long passphrase"))
    client.logout()

    # The count starts again: as many failures as before are still ordinary form errors.
    assert guess_until_locked_out(client, "/accounts/login/").status_code == 429


@pytest.mark.django_db
def test_a_login_without_a_request_still_checks_the_password(staff):
    # Scripts and the test client's login() come with no request, so no address to count failures by.
    assert Client().login(username="stella", password="a good long passphrase")
    assert not Client().login(username="stella", password="wrong")


# --- passwords ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("password", "why"),
    [
        ("short1!", "too short"),
        ("password123", "too common"),
        ("8410937265", "entirely numeric"),
        ("stellamaris", "too similar to the username"),
    ],
)
def test_weak_passwords_are_refused(password, why):
    user = User(username="stellamaris", email="stella@example.com")
    with pytest.raises(ValidationError, match=why):
        validate_password(password, user)


def test_a_long_unusual_password_passes():
    validate_password("correct horse battery staple", User(username="stella"))


# --- settings ------------------------------------------------------------------------------------------------


def test_without_a_secret_key_the_settings_refuse_to_load(monkeypatch):
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY is not set"):
        settings_under(monkeypatch)


def test_a_secret_key_from_the_environment_is_used_and_debug_may_do_without(monkeypatch):
    assert settings_under(monkeypatch, SECRET_KEY="from-the-environment")["SECRET_KEY"] == "from-the-environment"
    assert settings_under(monkeypatch, DEBUG="1")["SECRET_KEY"]


def test_cookies_are_secure_when_the_console_is_served_over_https(monkeypatch):
    plain = settings_under(monkeypatch, SECRET_KEY="k")
    assert not plain["SESSION_COOKIE_SECURE"] and not plain["CSRF_COOKIE_SECURE"]
    assert plain["SECURE_HSTS_SECONDS"] == 0 and "SECURE_PROXY_SSL_HEADER" not in plain

    https = settings_under(
        monkeypatch,
        SECRET_KEY="k",
        PUBLIC_URL="https://review.example.com",
        SECURE_HSTS_SECONDS="31536000",
        TRUST_X_FORWARDED_PROTO="1",
    )
    assert https["SESSION_COOKIE_SECURE"] and https["CSRF_COOKIE_SECURE"]
    assert https["SECURE_HSTS_SECONDS"] == 31536000
    assert https["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_the_cache_is_shared_through_redis_when_there_is_one(monkeypatch):
    # Failed API tokens are counted in the cache: with Redis, every web process sees the same count.
    shared = settings_under(monkeypatch, SECRET_KEY="k", REDIS_URL="redis://127.0.0.1:6379/3")["CACHES"]["default"]
    assert shared == {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/3"}
    local = settings_under(monkeypatch, SECRET_KEY="k")["CACHES"]["default"]
    assert local["BACKEND"] == "django.core.cache.backends.locmem.LocMemCache"
