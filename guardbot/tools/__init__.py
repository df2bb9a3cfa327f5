"""Tools that run once and exit: `guardbot doctor` and `guardbot audit`."""
