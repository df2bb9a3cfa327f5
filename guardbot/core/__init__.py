"""The core: observations, actions, the policy's rules and decisions, power levels.

No I/O, and no import of anything in guardbot outside this package: every rule lives here
once, and the adapters (guard, commands, pwlu) call it."""
