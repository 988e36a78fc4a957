"""Flows the console can run. Importing this package registers them."""

from flows import content, invoices, leads  # noqa: F401
