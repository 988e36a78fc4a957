"""New review items notify by signed webhook and/or email; failures surface so the task is retried."""

import hashlib
import hmac
import json
import threading
import time
import urllib.error
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core import mail
from django.urls import reverse

from reviewconsole.engine.models import RunStatus
from reviewconsole.engine.services import run_create
from reviewconsole.reviews.models import ReviewEvent, ReviewEventKind, ReviewItem
from reviewconsole.reviews.notifications import notify_new_item

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "s3cret-for-tests"
PUBLIC_URL = "https://review.example.com/"


class Receiver:
    """A local HTTP endpoint that records each POST and answers with `status`."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.requests: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": body})
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks/review"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def notify_settings(settings):
    settings.PUBLIC_URL = PUBLIC_URL
    settings.REVIEW_WEBHOOK_URL = ""
    settings.REVIEW_WEBHOOK_SECRET = SECRET
    settings.REVIEW_NOTIFY_EMAILS = []
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox = []
    return settings


def paused_item() -> ReviewItem:
    run = run_create(flow_name="emit_review", inputs={"title": "Invoice 7", "amount": 120.0})
    run.refresh_from_db()
    assert run.status == RunStatus.WAITING_REVIEW, run.error
    return ReviewItem.objects.get(run=run)


def expected_signature(timestamp: str, body: bytes) -> str:
    """The receiver's side: HMAC-SHA256 of "<timestamp>.<body>" under the shared secret."""
    message = timestamp.encode() + b"." + body
    return "sha256=" + hmac.new(SECRET.encode(), message, hashlib.sha256).hexdigest()


def item_url(item: ReviewItem) -> str:
    return PUBLIC_URL.rstrip("/") + reverse("reviews:item", args=[item.id])


def notified_events(item: ReviewItem) -> list[dict]:
    return list(ReviewEvent.objects.filter(item=item, kind=ReviewEventKind.NOTIFIED).values_list("detail", flat=True))


def test_new_item_posts_one_signed_webhook(notify_settings, receiver):
    notify_settings.REVIEW_WEBHOOK_URL = receiver.url
    before = int(time.time())
    item = paused_item()

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request["path"] == "/hooks/review"
    headers = {name.lower(): value for name, value in request["headers"].items()}
    assert headers["content-type"] == "application/json"
    body = request["body"]
    payload = json.loads(body)
    assert payload["event"] == "review_item.created"
    assert payload["item"]["id"] == str(item.id)
    assert payload["item"]["run_id"] == str(item.run_id)
    assert payload["item"]["output_type"] == "draft"
    assert payload["item"]["reason"] == "flow_requested"
    assert payload["item"]["confidence"] == 0.4
    assert payload["item"]["url"] == item_url(item)
    assert payload["item"]["url"].startswith("https://review.example.com/")
    assert str(item.id) in payload["item"]["url"]

    timestamp = headers["x-review-console-timestamp"]
    assert before - 1 <= int(timestamp) <= time.time() + 1
    signature = headers["x-review-console-signature"]
    assert hmac.compare_digest(signature, expected_signature(timestamp, body))
    # A receiver rejects a body or timestamp that was changed in transit.
    tampered = body.replace(b'"draft"', b'"other"')
    assert tampered != body
    assert not hmac.compare_digest(signature, expected_signature(timestamp, tampered))
    assert not hmac.compare_digest(signature, expected_signature(str(int(timestamp) + 1), body))

    assert notified_events(item) == [{"webhook": 200}]
    assert mail.outbox == []


def test_new_item_emails_the_configured_addresses(notify_settings):
    notify_settings.REVIEW_NOTIFY_EMAILS = ["ops@example.com"]
    item = paused_item()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["ops@example.com"]
    assert "draft" in message.subject
    assert item_url(item) in message.body
    assert notified_events(item) == [{"email": ["ops@example.com"]}]


def test_both_channels_are_used_when_both_are_configured(notify_settings, receiver):
    notify_settings.REVIEW_WEBHOOK_URL = receiver.url
    notify_settings.REVIEW_NOTIFY_EMAILS = ["ops@example.com", "lead@example.com"]
    item = paused_item()
    assert len(receiver.requests) == 1
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["ops@example.com", "lead@example.com"]
    assert notified_events(item) == [{"webhook": 200}, {"email": ["ops@example.com", "lead@example.com"]}]


def test_nothing_is_sent_when_nothing_is_configured(notify_settings, receiver):
    item = paused_item()
    notify_new_item(item_id=item.id)
    assert receiver.requests == []
    assert mail.outbox == []
    assert notified_events(item) == []


def test_failing_webhook_raises_so_the_task_is_retried(notify_settings):
    failing = Receiver(status=500)
    try:
        item = paused_item()  # created while nothing is configured
        notify_settings.REVIEW_WEBHOOK_URL = failing.url
        with pytest.raises(urllib.error.HTTPError) as raised:
            notify_new_item(item_id=item.id)
        assert raised.value.code == 500
        assert len(failing.requests) == 1
    finally:
        failing.close()
    assert notified_events(item) == []
