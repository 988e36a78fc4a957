"""Flows the console can run. Importing this package registers them."""

from flows import invoices  # noqa: F401
