"""Explore: change one knob, press Train, watch ‖∂L/∂h_t‖ vanish or survive through time."""
from __future__ import annotations

from dashboard.entry import through_entry
from dashboard.explore import explore_page

through_entry()  # a fresh server's first link may land here without the entry file: rerun through it
explore_page()
