"""Where the LLM settings come from: Django settings when they are usable, else the environment."""

from __future__ import annotations

import os
from typing import Any


def read_setting(name: str, default: Any = None) -> Any:
    """Read ``name`` from Django settings when they are usable, else the environment.

    Workers run with Django configured, and settings are the place operators
    override things; plain scripts and the CrewAI-only tests have no Django, so
    the environment is the fallback. Read on every use so a change (or a test's
    monkeypatch) applies to the next call without re-creating the LLM.
    """
    try:
        from django.conf import settings
        from django.core.exceptions import ImproperlyConfigured
    except ImportError:  # pragma: no cover - Django is a hard dependency of the app
        settings = None
    if settings is not None:
        try:
            value = getattr(settings, name, None)
        except ImproperlyConfigured:
            value = None
        if value is not None and value != "":
            return value
    value = os.environ.get(name)
    if value is not None and value != "":
        return value
    return default
