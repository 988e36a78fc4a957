"""Field-level difference between the AI's output and a reviewer's edit."""

from __future__ import annotations

from typing import Any


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def field_diff(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """Every leaf that changed, as {"path", "before", "after"}; paths look like `line_items[0].amount`."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[dict[str, Any]] = []
        for key in list(before) + [k for k in after if k not in before]:
            changes += field_diff(before.get(key), after.get(key), _join(path, key))
        return changes
    if isinstance(before, list) and isinstance(after, list):
        changes = []
        for index in range(max(len(before), len(after))):
            old = before[index] if index < len(before) else None
            new = after[index] if index < len(after) else None
            changes += field_diff(old, new, _join(path, index))
        return changes
    if before == after:
        return []
    return [{"path": path, "before": before, "after": after}]


def changed_fields(diff: list[dict[str, Any]]) -> list[str]:
    """Top-level field names touched by a diff, for per-field accuracy (`line_items[2].amount` → `line_items`)."""
    names = []
    for change in diff:
        name = change["path"].split(".")[0].split("[")[0]
        if name not in names:
            names.append(name)
    return names
