"""Issue a bearer token for the JSON API; the token is printed once and never stored."""

from __future__ import annotations

from argparse import ArgumentTypeError
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewconsole.engine.tokens import api_token_create


def _positive_days(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ArgumentTypeError(f"'{value}' is not a whole number of days, 1 or more")
    return int(value)


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it as the last line (it cannot be shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument(
            "--expires-days",
            type=_positive_days,
            metavar="N",
            help="the token stops working N days from now (default: it works until revoked)",
        )

    def handle(self, *args: Any, username: str, expires_days: int | None = None, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"No user named '{username}'") from None
        if not user.is_active:
            raise CommandError(f"User '{username}' is inactive; a token would not authenticate")
        token = api_token_create(user=user, expires_in=timedelta(days=expires_days) if expires_days else None)
        expiry = f"expires in {expires_days} days" if expires_days else "does not expire"
        self.stdout.write(
            f"API token {token[:8]}… for {user.get_username()} ({expiry}; revoke it with "
            f"manage.py revoke_api_token {token[:8]}). Send it as 'Authorization: Bearer <token>'; "
            "it is shown only this once:"
        )
        self.stdout.write(token)
