"""Test and demo tooling, used from the repository (tests, bench, scripts/demo); not installed."""
