"""Explore: change one knob, press Train, watch ‖∂L/∂h_t‖ vanish or survive through time."""
from __future__ import annotations

from dashboard.explore import explore_page

explore_page()
