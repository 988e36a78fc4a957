"""Which gate decisions are evidence for which version of a type's flow.

Evidence belongs to a flow version: a threshold shown safe for one version says nothing about the next, whose
prompt, model or code may have changed. `evidence_filter` is the one filter that says which decisions count;
every evidence read (summary, strata, recommendation, what-if, field errors, trend, guard) composes with it. Its
Q names only `flow_version`, a field of the gate decisions and of both rollups, so it filters either side.

Which versions count: for the current version, `AutonomyPolicy.evidence_versions` (its own, those a manager
carried over, and "" for the first version seen); for a version the flow has left, what counted for it when it
was left (recorded in the automatic change that left it).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.db.models import Q

from reviewconsole.autonomy.models import AutonomyPolicy, PolicyChange

# `PolicyChange.evidence["kind"]` of the automatic change a new flow version makes.
NEW_VERSION_KIND = "new_flow_version"
# The `?version=` value of the decisions made before versions were recorded (the empty value reads the current).
UNRECORDED = "unrecorded"
UNRECORDED_LABEL = "unrecorded (before versions were recorded)"


def evidence_filter(versions: Iterable[str]) -> Q:
    """The gate decisions (or rollup rows) of these flow versions: the evidence read for a version."""
    return Q(flow_version__in=list(versions))


def versions_left(policy: AutonomyPolicy) -> dict[str, tuple[str, ...]]:
    """The versions the type's flow had before its current one, newest first, each with the versions whose
    decisions were its evidence then. One query."""
    changes = PolicyChange.objects.filter(policy=policy, evidence__kind=NEW_VERSION_KIND).order_by("-at", "-id")
    left: dict[str, tuple[str, ...]] = {}
    for evidence in changes.values_list("evidence", flat=True):
        old = evidence["from_version"]
        left.setdefault(old, tuple(evidence.get("evidence_versions") or [old]))
    return left


def version_label(version: str) -> str:
    return version or UNRECORDED_LABEL


def version_param(version: str) -> str:
    """A version as the `?version=` value that asks for it."""
    return version or UNRECORDED


@dataclass(frozen=True)
class VersionView:
    """The version a page reads the evidence of: `version` (None: the current one), and the versions it covers."""

    version: str | None
    current: str
    covers: tuple[str, ...]

    @property
    def label(self) -> str:
        return version_label(self.current if self.version is None else self.version)

    @property
    def covers_label(self) -> str:
        return ", ".join(version_label(v) for v in self.covers)

    def where(self) -> Q:
        return evidence_filter(self.covers)


def version_view(policy: AutonomyPolicy, asked: str | None, left: dict[str, tuple[str, ...]]) -> VersionView:
    """The version asked for (a `?version=` value) if the type's flow has left it; anything else: the current."""
    version = "" if asked == UNRECORDED else asked
    if version is None or version == policy.flow_version or version not in left:
        return VersionView(None, policy.flow_version, tuple(policy.evidence_versions))
    return VersionView(version, policy.flow_version, left[version])
