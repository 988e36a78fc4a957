"""Tell people outside the console that a review item is waiting.

Webhook: POST of a JSON body with `X-Review-Console-Timestamp` and
`X-Review-Console-Signature: sha256=<hex>`, the HMAC-SHA256 of
`"<timestamp>.<body>"` under REVIEW_WEBHOOK_SECRET. Receivers recompute it and
reject stale timestamps, which stops replays. Email: through Django's email
backend to REVIEW_NOTIFY_EMAILS.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
from typing import Any

from django.conf import settings
from django.core.mail import send_mail
from django.urls import reverse

from reviewconsole.reviews.models import ReviewEvent, ReviewEventKind, ReviewItem
from reviewconsole.reviews.reasons import reason_label

WEBHOOK_TIMEOUT_SECONDS = 5


def sign(body: bytes, timestamp: str, secret: str) -> str:
    """The signature header value for a webhook body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def item_payload(item: ReviewItem) -> dict[str, Any]:
    return {
        "event": "review_item.created",
        "item": {
            "id": str(item.id),
            "run_id": str(item.run_id),
            "output_type": item.output_type,
            "reason": item.reason,
            "confidence": item.confidence,
            "created_at": item.created_at.isoformat(),
            "url": settings.PUBLIC_URL.rstrip("/") + reverse("reviews:item", args=[item.id]),
        },
    }


def _post_webhook(payload: dict[str, Any]) -> int:
    body = json.dumps(payload, separators=(",", ":")).encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(  # noqa: S310 - the URL is the operator's own setting
        settings.REVIEW_WEBHOOK_URL,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "X-Review-Console-Timestamp": timestamp,
            "X-Review-Console-Signature": sign(body, timestamp, settings.REVIEW_WEBHOOK_SECRET),
        },
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_SECONDS) as response:  # noqa: S310
        return response.status


def _already_sent(item: ReviewItem, channel: str) -> bool:
    return item.events.filter(kind=ReviewEventKind.NOTIFIED, detail__has_key=channel).exists()


def notify_new_item(*, item_id: Any) -> None:
    """Send every configured notification once; an error propagates so the task is retried.

    A channel that already succeeded (its `notified` event exists) is not sent
    again when a retry or a redelivered task runs this a second time.
    """
    if not (settings.REVIEW_WEBHOOK_URL or settings.REVIEW_NOTIFY_EMAILS):
        return
    item = ReviewItem.objects.get(id=item_id)
    payload = item_payload(item)
    if settings.REVIEW_WEBHOOK_URL and not _already_sent(item, "webhook"):
        status = _post_webhook(payload)
        ReviewEvent.objects.create(item=item, kind=ReviewEventKind.NOTIFIED, detail={"webhook": status})
    if settings.REVIEW_NOTIFY_EMAILS and not _already_sent(item, "email"):
        send_mail(
            subject=f"Review needed: {item.output_type} ({reason_label(item.reason).lower()})",
            message=f"A {item.output_type} is waiting for review:\n{payload['item']['url']}\n",
            from_email=None,
            recipient_list=settings.REVIEW_NOTIFY_EMAILS,
        )
        ReviewEvent.objects.create(
            item=item, kind=ReviewEventKind.NOTIFIED, detail={"email": settings.REVIEW_NOTIFY_EMAILS}
        )
