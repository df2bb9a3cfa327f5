"""Wall-clock milliseconds, the unit of every timestamp guardbot stores."""

import time


def now_ms() -> int:
    return int(time.time() * 1000)
