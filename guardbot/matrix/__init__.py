"""Matrix on the wire: the one homeserver client guardbot uses, and the Matrix error JSON it
serves.

Imports only the core (power levels)."""
