"""How long to wait before trying again after the n-th failure in a row: doubling from the
first wait, never longer than the longest. One rule for every retry in guardbot."""

from __future__ import annotations


def backoff(failures: int, first: float, longest: float) -> float:
    """The wait after `failures` failures in a row (0: the first wait)."""
    return min(first * 2 ** min(failures, 60), longest)
