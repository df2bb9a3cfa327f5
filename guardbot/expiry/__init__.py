"""Every guest account has an end (config `expiry.*`, off by default): the pass over the
homeserver's accounts that finds who is idle (idle_accounts), the decider of what is due
(expiry_decider) and the carrier that suspends, lifts and deactivates (account_carrier). The
rules themselves are pure, in core/expiry_rules.py."""
