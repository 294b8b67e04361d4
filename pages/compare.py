"""Compare: 2 to 4 mitigations side by side, trained together on the same data, from one link."""
from __future__ import annotations

from dashboard.entry import through_entry
from dashboard.compare import compare_page

through_entry()  # a fresh server's first link may land here without the entry file: rerun through it
compare_page()
