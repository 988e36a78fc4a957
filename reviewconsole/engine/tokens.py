"""Bearer tokens for the JSON API. Only a token's SHA-256 digest is stored; the plaintext is shown once.

Failed tokens are counted per client address in Django's cache (Redis when REDIS_URL is set, so every web
process shares the count): past API_TOKEN_FAILURE_LIMIT, that address's wrong tokens answer 429 for the
cool-off, so guessing is slowed down and easy to see. A right token is still accepted from a locked-out
address: a token is 256 random bits, so letting it through teaches a guesser nothing, while refusing it
would let anyone lock out every client that shares the address (all of them, behind a proxy).
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from reviewconsole.engine.models import ApiToken

# `last_used_at` is a hint for people pruning tokens, not an audit log: writing
# it on every request would turn each API read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class ApiTokenLockedOut(Exception):
    """Too many failed tokens from one address; `retry_after` is in seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"Too many failed API tokens from your address; try again in {retry_after} seconds.")


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(*, user: AbstractBaseUser, expires_in: timedelta | None = None) -> str:
    """Create a token for `user`, valid for `expires_in` (for ever if None); return its plaintext, stored nowhere.

    Side effects: an ApiToken row holding the digest, the first 8 characters (the prefix) and the expiry.
    """
    token = secrets.token_urlsafe(32)
    # Its prefix names it on the command line (revoke_api_token), where a leading "-" would read as an option.
    while token.startswith("-"):
        token = secrets.token_urlsafe(32)
    expires_at = timezone.now() + expires_in if expires_in is not None else None
    ApiToken.objects.create(user=user, digest=_digest(token), prefix=token[:8], expires_at=expires_at)
    return token


def api_token_revoke(*, prefix: str | None = None, user: AbstractBaseUser | None = None) -> list[ApiToken]:
    """Delete the tokens with this prefix and/or of this user; returns what was deleted.

    Side effects: the ApiToken rows are deleted, so requests with them answer 401 from then on.
    """
    if prefix is None and user is None:
        raise ValueError("revoke by prefix, by user, or both")
    tokens = ApiToken.objects.select_related("user").order_by("created_at")
    if prefix is not None:
        tokens = tokens.filter(prefix=prefix)
    if user is not None:
        tokens = tokens.filter(user=user)
    revoked = list(tokens)
    ApiToken.objects.filter(pk__in=[t.pk for t in revoked]).delete()
    return revoked


def api_token_user(token: str) -> AbstractBaseUser | None:
    """The active user an unexpired token belongs to, or None.

    The lookup is by digest, so the database never compares the secret itself;
    the digests are compared again in constant time. Side effect: `last_used_at`
    is refreshed when it is older than a minute.
    """
    if not token:
        return None
    digest = _digest(token)
    now = timezone.now()
    api_token = (
        ApiToken.objects.select_related("user")
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), digest=digest)
        .first()
    )
    if api_token is None or not hmac.compare_digest(api_token.digest, digest) or not api_token.user.is_active:
        return None
    if api_token.last_used_at is None or now - api_token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=api_token.pk).update(last_used_at=now)
    return api_token.user


def _failures_key(client_ip: str) -> str:
    return f"api-token-failures:{client_ip}"


def _lockout_key(client_ip: str) -> str:
    return f"api-token-lockout:{client_ip}"


def api_token_lockout_check(*, client_ip: str) -> None:
    """Raise ApiTokenLockedOut while `client_ip` is locked out (asked for wrong tokens only, see above)."""
    until = cache.get(_lockout_key(client_ip))
    if until is not None and until > time.time():
        raise ApiTokenLockedOut(math.ceil(until - time.time()))


def api_token_failure_record(*, client_ip: str) -> None:
    """Count a failed token from `client_ip`; the one that reaches the limit locks the address out (and raises).

    Failures are counted in a window of one cool-off from the first. Side effects: cache keys per address,
    which expire with the window or the lockout.
    """
    cooloff = settings.LOGIN_COOLOFF_SECONDS
    key = _failures_key(client_ip)
    cache.add(key, 0, timeout=cooloff)
    try:
        failures = cache.incr(key)
    except ValueError:  # the window ended between add() and incr()
        cache.set(key, 1, timeout=cooloff)
        failures = 1
    if failures >= settings.API_TOKEN_FAILURE_LIMIT:
        cache.set(_lockout_key(client_ip), time.time() + cooloff, timeout=cooloff)
        cache.delete(key)
        raise ApiTokenLockedOut(cooloff)
