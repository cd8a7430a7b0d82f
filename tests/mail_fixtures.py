"""Fixtures for the mail tests (loaded by tests/conftest.py): OAuth records, sandbox users."""

from __future__ import annotations
