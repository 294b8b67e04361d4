"""Lessons: a prepared experiment in numbered steps; predict, train, and read what the run shows."""
from __future__ import annotations

from dashboard.entry import through_entry
from dashboard.lessons import lessons_page

through_entry()  # a fresh server's first link may land here without the entry file: rerun through it
lessons_page()
