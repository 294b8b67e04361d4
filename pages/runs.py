"""Runs: every saved run in one table; open, compare, rename, delete, export and import runs."""
from __future__ import annotations

from dashboard.entry import through_entry
from dashboard.runs import runs_page

through_entry()  # a fresh server's first link may land here without the entry file: rerun through it
runs_page()
