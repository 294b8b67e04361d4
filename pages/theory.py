"""Theory: the equations of vanishing and exploding gradients, computed live, and the paper checks."""
from __future__ import annotations

from dashboard.entry import through_entry
from dashboard.theory import theory_page

through_entry()  # a fresh server's first link may land here without the entry file: rerun through it
theory_page()
