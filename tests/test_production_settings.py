"""What the production settings do under a given environment, and the values they refuse at start-up."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from tests.settings_env import settings_under


def test_an_https_public_url_secures_cookies_turns_on_hsts_and_is_allowed_and_trusted(monkeypatch):
    https = settings_under(monkeypatch, SECRET_KEY="k", PUBLIC_URL="https://review.example.com/console")
    assert https["SESSION_COOKIE_SECURE"] and https["CSRF_COOKIE_SECURE"]
    assert https["SECURE_HSTS_SECONDS"] == 31536000
    assert "review.example.com" in https["ALLOWED_HOSTS"]
    assert https["CSRF_TRUSTED_ORIGINS"] == ["https://review.example.com"]
    trying = settings_under(
        monkeypatch, SECRET_KEY="k", PUBLIC_URL="https://review.example.com", SECURE_HSTS_SECONDS="0"
    )
    assert trying["SECURE_HSTS_SECONDS"] == 0


def test_plain_http_sets_no_hsts_and_keeps_the_local_hosts(monkeypatch):
    plain = settings_under(monkeypatch, SECRET_KEY="k")
    assert plain["SECURE_HSTS_SECONDS"] == 0 and not plain["SESSION_COOKIE_SECURE"]
    assert plain["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PUBLIC_URL", "review.example.com"),
        ("PUBLIC_URL", "ftp://review.example.com"),
        ("TRUST_X_FORWARDED_PROTO", "maybe"),
        ("SECURE_HSTS_SECONDS", "-1"),
        ("LOG_FORMAT", "xml"),
        ("STATIC_MANIFEST", "2"),
        ("WORKERS", "0"),
        ("WEB_CONCURRENCY", "many"),
        ("WORKER_HEARTBEAT_SECONDS", "0"),
        ("METRICS_WINDOW_SECONDS", "-5"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(monkeypatch, variable, value):
    with pytest.raises(ImproperlyConfigured, match=variable):
        settings_under(monkeypatch, SECRET_KEY="k", **{variable: value})


def test_the_proxy_header_is_trusted_only_when_asked(monkeypatch):
    assert "SECURE_PROXY_SSL_HEADER" not in settings_under(monkeypatch, SECRET_KEY="k", TRUST_X_FORWARDED_PROTO="no")
    trusted = settings_under(monkeypatch, SECRET_KEY="k", TRUST_X_FORWARDED_PROTO="yes")
    assert trusted["SECURE_PROXY_SSL_HEADER"] == ("HTTP_X_FORWARDED_PROTO", "https")


def test_static_manifest_and_json_logs_are_switched_by_the_environment(monkeypatch):
    default = settings_under(monkeypatch, SECRET_KEY="k")
    assert default["STORAGES"]["staticfiles"]["BACKEND"] == "django.contrib.staticfiles.storage.StaticFilesStorage"
    assert default["WHITENOISE_USE_FINDERS"] and default["LOGGING"]["handlers"]["console"]["formatter"] == "text"
    served = settings_under(monkeypatch, SECRET_KEY="k", STATIC_MANIFEST="1", LOG_FORMAT="JSON")
    assert served["STORAGES"]["staticfiles"]["BACKEND"] == "whitenoise.storage.CompressedManifestStaticFilesStorage"
    assert not served["WHITENOISE_USE_FINDERS"]
    assert served["LOGGING"]["handlers"]["console"]["formatter"] == "json"
