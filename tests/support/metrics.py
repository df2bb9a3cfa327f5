"""Reading guardbot's Prometheus counters, as an operator's scrape would."""

from __future__ import annotations

from prometheus_client import REGISTRY


def counted(name: str, **labels: str) -> float:
    """The current value of a counter (its `_total` sample), 0 before its first increment."""
    return REGISTRY.get_sample_value(f"{name}_total", labels) or 0.0


def gauge(name: str, **labels: str) -> float | None:
    """A gauge's current value, None if it has no such series."""
    return REGISTRY.get_sample_value(name, labels)
