"""Sweeps: train a grid of settings × seeds in the background and watch its trainability map fill in."""
from __future__ import annotations

from dashboard.sweeps import sweeps_page

sweeps_page()
