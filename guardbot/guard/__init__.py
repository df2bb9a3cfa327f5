"""The guard loop: intake → evaluator → executor, with the facts it gathers (directory,
guests, room settings).

Imports the core, the database stores and the Matrix client; nothing here imports app."""
