"""The two roles people have in the console, as Django groups with model permissions."""

from __future__ import annotations

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
