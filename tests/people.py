"""Users and logged-in clients for page and API tests."""

from django.contrib.auth.models import Permission, User
from django.test import Client

from reviewconsole.reviews.models import ReviewerScope
from reviewconsole.reviews.roles import role_group


def user_in_role(username: str, role: str | None = "reviewer", *output_types: str) -> User:
    """A user in a console role (none for `None`), limited to `output_types` when any are given."""
    user = User.objects.create_user(username, password="pw")
    if role:
        user.groups.add(role_group(role))
    ReviewerScope.objects.bulk_create(ReviewerScope(user=user, output_type=t) for t in output_types)
    return user


def user_with_engine_perms(username: str, *codenames: str) -> User:
    """A user holding exactly these `engine` permissions, outside any role."""
    user = User.objects.create_user(username, password="pw")
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="engine", codename__in=codenames))
    return user


def client_for(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client
