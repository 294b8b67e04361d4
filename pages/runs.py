"""Runs: every saved run in one table; open, compare, rename, delete, export and import runs."""
from __future__ import annotations

from dashboard.runs import runs_page

runs_page()
