"""`manage.py grant USERNAME --role reviewer|manager [--output-types a,b]`."""

import io

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from reviewconsole.reviews.models import ReviewerScope
from reviewconsole.reviews.selectors import can_review, reviewable_output_types

pytestmark = pytest.mark.django_db


def grant(*args: str) -> tuple[list[str], list[str]]:
    """Run the command; returns its stdout and stderr lines."""
    out, err = io.StringIO(), io.StringIO()
    call_command("grant", *args, stdout=out, stderr=err)
    return out.getvalue().splitlines(), err.getvalue().splitlines()


def fresh(username: str) -> User:
    """The user loaded anew, so permission caches reflect the grant."""
    return User.objects.get(username=username)


def scopes(username: str) -> set[str]:
    return set(ReviewerScope.objects.filter(user__username=username).values_list("output_type", flat=True))


def test_creates_the_user_with_an_unusable_password_and_says_how_to_set_one():
    out, err = grant("rita", "--role", "reviewer")

    user = fresh("rita")
    assert not user.has_usable_password()
    assert user.is_active and not user.is_staff
    assert out == [
        "Created user 'rita' with no usable password; set one with: manage.py changepassword rita",
        "Granted 'reviewer' to rita. Roles: reviewer. Can review: all output types.",
    ]
    assert err == []
    assert list(user.groups.values_list("name", flat=True)) == ["reviewer"]
    assert user.has_perm("reviews.review_item") and user.has_perm("engine.view_flowrun")
    assert not user.has_perm("engine.add_flowrun")
    assert reviewable_output_types(user) is None


def test_existing_user_keeps_their_password():
    User.objects.create_user("rita", password="secret")
    out, _ = grant("rita", "--role", "reviewer")
    assert fresh("rita").check_password("secret")
    assert not any("Created" in line for line in out)


def test_output_types_become_the_users_scopes():
    out, err = grant("rita", "--role", "reviewer", "--output-types", "invoice, draft,invoice")
    assert scopes("rita") == {"invoice", "draft"}
    assert out[-1] == "Granted 'reviewer' to rita. Roles: reviewer. Can review: draft, invoice."
    assert err == []
    user = fresh("rita")
    assert can_review(user, "invoice") and not can_review(user, "receipt")


def test_output_types_replace_earlier_scopes_and_omitting_them_keeps_them():
    grant("rita", "--role", "reviewer", "--output-types", "invoice,draft")
    grant("rita", "--role", "reviewer", "--output-types", "draft")
    assert scopes("rita") == {"draft"}

    out, _ = grant("rita", "--role", "reviewer")
    assert scopes("rita") == {"draft"}
    assert out[-1].endswith("Can review: draft.")


def test_empty_output_types_lift_the_limit():
    grant("rita", "--role", "reviewer", "--output-types", "invoice")
    out, _ = grant("rita", "--role", "reviewer", "--output-types", "")
    assert scopes("rita") == set()
    assert out[-1].endswith("Can review: all output types.")


def test_roles_add_up():
    grant("maria", "--role", "reviewer", "--output-types", "invoice")
    out, _ = grant("maria", "--role", "manager")

    user = fresh("maria")
    assert sorted(user.groups.values_list("name", flat=True)) == ["manager", "reviewer"]
    assert user.has_perm("engine.add_flowrun") and user.has_perm("reviews.review_item")
    assert out == ["Granted 'manager' to maria. Roles: manager, reviewer. Can review: invoice."]

    # Granting a role again changes nothing.
    grant("maria", "--role", "manager")
    assert fresh("maria").groups.count() == 2


def test_unknown_output_type_is_granted_with_a_warning():
    out, err = grant("rita", "--role", "reviewer", "--output-types", "invoice,receipt")
    assert scopes("rita") == {"invoice", "receipt"}
    [warning] = err
    assert warning.startswith("Warning: no registered flow produces 'receipt'")
    known = warning.split("known: ", 1)[1]
    assert "draft" in known and "invoice" in known and "receipt" not in known
    assert out[-1].endswith("Can review: invoice, receipt.")


def test_unknown_role_is_an_error_and_creates_nobody():
    with pytest.raises(CommandError, match=r"Unknown role 'admin'; expected one of: reviewer, manager"):
        grant("rita", "--role", "admin")
    assert not User.objects.filter(username="rita").exists()


def test_role_is_required():
    with pytest.raises(CommandError, match="--role"):
        grant("rita")


def test_superuser_can_review_everything_whatever_the_scopes():
    User.objects.create_superuser("root", password="pw")
    out, _ = grant("root", "--role", "reviewer", "--output-types", "invoice")
    assert out[-1].endswith("Can review: all output types.")


@pytest.mark.django_db
def test_managers_get_staff_status_for_the_policy_admin(django_user_model):
    call_command("grant", "maria", "--role", "manager", stdout=io.StringIO())
    assert django_user_model.objects.get(username="maria").is_staff
    call_command("grant", "rita", "--role", "reviewer", stdout=io.StringIO())
    assert not django_user_model.objects.get(username="rita").is_staff
