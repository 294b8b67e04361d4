"""Sweeps: train a grid of settings × seeds in the background and watch its trainability map fill in."""
from __future__ import annotations

from dashboard.entry import through_entry
from dashboard.sweeps import sweeps_page

through_entry()  # a fresh server's first link may land here without the entry file: rerun through it
sweeps_page()
