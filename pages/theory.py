"""Theory: the equations of vanishing and exploding gradients, computed live, and the paper checks."""
from __future__ import annotations

from dashboard.theory import theory_page

theory_page()
