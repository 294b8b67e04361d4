"""Compare: 2 to 4 mitigations side by side, trained together on the same data, from one link."""
from __future__ import annotations

from dashboard.compare import compare_page

compare_page()
