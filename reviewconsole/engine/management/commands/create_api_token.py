"""Issue a bearer token for the JSON API; the token is printed once and never stored."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from reviewconsole.engine.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME and print it as the last line (it cannot be shown again)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"No user named '{username}'") from None
        if not user.is_active:
            raise CommandError(f"User '{username}' is inactive; a token would not authenticate")
        token = api_token_create(user=user)
        self.stdout.write(
            f"API token for {user.get_username()}. Send it as 'Authorization: Bearer <token>'; "
            "it is shown only this once:"
        )
        self.stdout.write(token)
