"""Bearer tokens for the JSON API. Only a token's SHA-256 digest is stored; the plaintext is shown once."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.utils import timezone

from reviewconsole.engine.models import ApiToken

# `last_used_at` is a hint for people pruning tokens, not an audit log: writing
# it on every request would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user: AbstractBaseUser) -> str:
    """Create a token for `user` and return its plaintext, which is not stored anywhere.

    Side effects: an ApiToken row holding the digest and the first 8 characters.
    """
    token = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, digest=_digest(token), prefix=token[:8])
    return token


def api_token_user(token: str) -> AbstractBaseUser | None:
    """The active user a token belongs to, or None.

    The lookup is by digest, so the database never compares the secret itself;
    the digests are compared again in constant time. Side effect: `last_used_at`
    is refreshed when it is older than a minute.
    """
    if not token:
        return None
    digest = _digest(token)
    api_token = ApiToken.objects.select_related("user").filter(digest=digest).first()
    if api_token is None or not hmac.compare_digest(api_token.digest, digest) or not api_token.user.is_active:
        return None
    now = timezone.now()
    if api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
    return api_token.user
