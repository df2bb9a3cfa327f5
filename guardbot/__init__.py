"""guardbot: a Matrix appservice that keeps guests out of a homeserver's listed rooms."""

__version__ = "0.1.0"
