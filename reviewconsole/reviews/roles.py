"""The two roles people have in the console, as Django groups with model permissions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.contrib.auth.models import Group, Permission

ROLE_PERMISSIONS = {
    "reviewer": ["engine.view_flowrun", "reviews.review_item"],
    "manager": [
        "engine.view_flowrun",
        "engine.add_flowrun",
        "engine.change_flowrun",
        "reviews.review_item",
        "autonomy.manage_autonomy",
        "autonomy.view_autonomypolicy",
    ],
}
ROLES = tuple(ROLE_PERMISSIONS)


def role_group(role: str) -> Group:
    """The group for a role, created with its permissions if missing."""
    group, _ = Group.objects.get_or_create(name=role)
    wanted = []
    for dotted in ROLE_PERMISSIONS[role]:
        app_label, codename = dotted.split(".")
        wanted.append(Permission.objects.get(content_type__app_label=app_label, codename=codename))
    group.permissions.add(*wanted)
    return group


def role_grant(*, user: Any, role: str, output_types: Sequence[str] | None = None) -> None:
    """Give `user` a role; `output_types`, when given, becomes exactly the set of types they review.

    Managers also get staff status: they edit policies in the Django admin, which requires it.
    """
    from reviewconsole.reviews.models import ReviewerScope

    user.groups.add(role_group(role))
    if role == "manager" and not user.is_staff:
        user.is_staff = True
        user.save(update_fields=["is_staff"])
    if output_types is not None:
        ReviewerScope.objects.filter(user=user).exclude(output_type__in=output_types).delete()
        existing = set(ReviewerScope.objects.filter(user=user).values_list("output_type", flat=True))
        ReviewerScope.objects.bulk_create(
            ReviewerScope(user=user, output_type=name) for name in output_types if name not in existing
        )
