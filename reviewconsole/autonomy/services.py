"""Writes of autonomy policies."""

from reviewconsole.autonomy.models import AutonomyPolicy


def policy_ensure(*, output_type: str) -> AutonomyPolicy:
    """The type's policy, created with defaults the first time the type is seen."""
    policy, _ = AutonomyPolicy.objects.get_or_create(output_type=output_type)
    return policy
