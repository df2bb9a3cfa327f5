"""What people say to guardbot: room admins' `!guardbot` commands, the management room's
commands, and the batched reports guardbot posts there.

Imports the core, the guard loop's fact sources and the stores."""
