"""Revoke API tokens: one by the prefix `create_api_token` printed, or all of a user's."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewconsole.engine.tokens import api_token_revoke


class Command(BaseCommand):
    help = "Revoke the API token with PREFIX (its first 8 characters), or every token of --user USERNAME."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("prefix", nargs="?", help="the token's first 8 characters, as create_api_token printed")
        parser.add_argument("--user", metavar="USERNAME", help="revoke this user's tokens (with PREFIX: only that one)")

    def handle(self, *args: Any, prefix: str | None = None, user: str | None = None, **options: Any) -> None:
        if prefix is None and user is None:
            raise CommandError("Give a token prefix, or --user USERNAME to revoke all of a user's tokens")
        owner = None
        if user is not None:
            user_model = get_user_model()
            try:
                owner = user_model._default_manager.get_by_natural_key(user)
            except user_model.DoesNotExist:
                raise CommandError(f"No user named '{user}'") from None
        revoked = api_token_revoke(prefix=prefix, user=owner)
        if not revoked:
            raise CommandError(f"No API token with prefix '{prefix}'" if prefix else f"User '{user}' has no API tokens")
        for token in revoked:
            self.stdout.write(f"Revoked API token {token.prefix}… of {token.user.get_username()}")
