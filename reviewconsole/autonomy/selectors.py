"""Reads of autonomy policies."""

from reviewconsole.autonomy.models import AutonomyPolicy


def policies_by_type(output_types: list[str]) -> dict[str, AutonomyPolicy]:
    return {p.output_type: p for p in AutonomyPolicy.objects.filter(output_type__in=output_types)}
