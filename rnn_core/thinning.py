"""One rule for keeping a bounded, evenly spaced sample of a stream that may run for a long time.

Keep every stride-th offered item; when full, drop every other kept item and double the
stride. What remains is evenly spaced over the whole stream (offers 0, s, 2s, ...), however
long it grows, and never more than the holder's cap. The Recorder (recorded steps on disk)
and the History (a page's charts) both follow it, so their samples line up.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Thinning:
    stride: int = 1  # keep an offer when its index % stride == 0
    offered: int = 0  # offers so far

    def offer(self, full: bool) -> tuple[bool, bool]:
        """Offer the next item. Returns (thin, keep): `thin` asks the holder to drop every other held
        item now (keep positions 0, 2, 4, ...), `keep` to store this item. `full`: no room for one more."""
        i = self.offered
        self.offered += 1
        if i % self.stride:
            return False, False
        if not full:
            return False, True
        self.stride *= 2  # the held items are offers 0, s, 2s, ...: their even positions are multiples of 2s
        return True, i % self.stride == 0


def thin_rows(a: np.ndarray, n: int) -> int:
    """Keep every other of the first n rows of `a` in place (for preallocated buffers); return the new count."""
    keep = a[:n:2]
    a[: len(keep)] = keep
    return len(keep)
