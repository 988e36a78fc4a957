"""Give a person a role in the console, creating their account if needed."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from reviewconsole.reviews.roles import ROLES, role_grant


def _split_types(value: str) -> list[str]:
    types: list[str] = []
    for part in value.split(","):
        name = part.strip()
        if name and name not in types:
            types.append(name)
    return types


class Command(BaseCommand):
    help = (
        "Grant USERNAME a role (reviewer or manager), creating the user if needed. Roles add up: granting one "
        "keeps the others. --output-types limits which output types the user may review."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", required=True, help=f"One of: {', '.join(ROLES)}.")
        parser.add_argument(
            "--output-types",
            dest="output_types",
            default=None,
            help=(
                "Comma-separated output types the user may review, replacing any earlier list "
                '(e.g. "invoice,receipt"). An empty value ("") lifts the limit: every type. '
                "Without the option the user's current list is kept."
            ),
        )

    def handle(self, *args: Any, username: str, role: str, output_types: str | None, **options: Any) -> None:
        from reviewconsole.reviews.selectors import reviewable_output_types

        if role not in ROLES:
            raise CommandError(f"Unknown role '{role}'; expected one of: {', '.join(ROLES)}")
        types = _split_types(output_types) if output_types is not None else None
        if types:
            self._warn_unknown_types(types)

        user_model = get_user_model()
        with transaction.atomic():
            try:
                user = user_model._default_manager.get_by_natural_key(username)
                created = False
            except user_model.DoesNotExist:
                # Without a password `create_user` stores an unusable one: nobody can sign in until it is set.
                user = user_model._default_manager.create_user(username)
                created = True
            role_grant(user=user, role=role, output_types=types)

        name = user.get_username()
        if created:
            self.stdout.write(
                f"Created user '{name}' with no usable password; set one with: manage.py changepassword {name}"
            )
        elif not user.is_active:
            self.stderr.write(self.style.WARNING(f"Warning: user '{name}' is inactive and cannot sign in."))

        # A fresh instance: the permission cache of `user` predates the new group.
        user = user_model._default_manager.get(pk=user.pk)
        roles = sorted(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        allowed = reviewable_output_types(user)
        reviews = "all output types" if allowed is None else ", ".join(sorted(allowed)) or "nothing"
        self.stdout.write(
            self.style.SUCCESS(f"Granted '{role}' to {name}. Roles: {', '.join(roles)}. Can review: {reviews}.")
        )

    def _warn_unknown_types(self, types: list[str]) -> None:
        from reviewconsole.engine.registry import all_flows

        known = {output_type for spec in all_flows() for output_type in spec.output_types}
        unknown = [name for name in types if name not in known]
        if unknown:
            self.stderr.write(
                self.style.WARNING(
                    f"Warning: no registered flow produces {', '.join(repr(n) for n in unknown)} "
                    f"(known: {', '.join(sorted(known)) or 'none'}); granted anyway."
                )
            )
