"""Prometheus metrics, served on `metrics.listen_address` when `metrics.enabled`."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

EVENTS_RECEIVED = Counter("guardbot_events_received_total", "Events the homeserver sent")
EVENTS_IGNORED = Counter(
    "guardbot_events_ignored_total", "Events dropped at triage: nothing guardbot cares about"
)
EVENTS_MALFORMED = Counter("guardbot_events_malformed_total", "Events with a broken shape")
EVENTS_ACTED_ON = Counter(
    "guardbot_events_acted_on_total", "Observations whose evaluation queued at least one action"
)
TRANSACTIONS_REPEATED = Counter(
    "guardbot_transactions_repeated_total",
    "Transactions the homeserver sent again (same ID and body): answered, nothing stored twice",
)
TRANSACTION_SECONDS = Histogram(
    "guardbot_transaction_seconds",
    "Time from a transaction's arrival to its answer (parsed, stored durably)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
GUESTS_REMOVED = Counter(
    "guardbot_guests_removed_total",
    "Guests removed from listed (or guest-free) rooms, by the room's policy and the room",
    ["policy", "room"],
)
REMOVAL_SECONDS = Histogram(
    "guardbot_guest_removal_seconds",
    "Time from a guest's join (the homeserver's timestamp) to guardbot's removal of them",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
REMOVAL_PENDING_OLDEST = Gauge(
    "guardbot_removal_pending_oldest_seconds",
    "Age of the oldest removal (kick) decided and not yet done: a guest still inside; 0 if none",
)
ACTIONS_WAITING = Gauge(
    "guardbot_actions_waiting",
    "Actions queued and waiting, by what they wait on (nothing: due; homeserver, rate_limit, room)",
    ["on"],
)
ACTIONS_DONE = Counter(
    "guardbot_actions_total", "Actions finished, by kind and state", ["kind", "state"]
)
ACTIONS_RETRIED = Counter(
    "guardbot_actions_retried_total",
    "Actions postponed to retry, by kind and cause",
    ["kind", "cause"],
)
LEADER = Gauge("guardbot_leader", "1 while this process leads (acts), 0 while it stands by")
QUEUE_DEPTH = Gauge("guardbot_action_queue_depth", "Actions waiting to be carried out")
INBOX_DEPTH = Gauge("guardbot_inbox_depth", "Observations waiting to be evaluated")
INBOX_OLDEST = Gauge(
    "guardbot_inbox_oldest_seconds",
    "Age of the oldest observation waiting to be evaluated (how far behind intake is); 0 if none",
)
DATABASE_UP = Gauge(
    "guardbot_database_up", "1 while guardbot's last database round trip worked, else 0"
)
LISTED_ROOMS = Gauge("guardbot_directory_listed_rooms", "Rooms in the public room directory")
DIRECTORY_POLL_SECONDS = Histogram(
    "guardbot_directory_poll_seconds", "Time of one full scan of the public room directory"
)
DOOR_ANSWERS = Counter(
    "guardbot_door_answers_total",
    "Answers at the door, by callback and answer (allowed, refused, late, unsure)",
    ["callback", "answer"],
)
DOOR_TOKEN_REFUSED = Counter(
    "guardbot_door_token_refused_total",
    "Calls at the door refused for their token (missing or wrong): homeserver.yaml's"
    " synapse_http_antispam authorization is not guardbot's antispam.token",
    ["reason"],
)
DOOR_LAST_CALL = Gauge(
    "guardbot_door_last_call_timestamp_seconds",
    "When the homeserver last called the door with the right token (Unix time; 0: never)",
)
DOOR_SECONDS = Histogram(
    "guardbot_door_seconds",
    "Time guardbot took to answer the door, by callback",
    ["callback"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1),
)
EXPIRY_DUE = Gauge(
    "guardbot_expiry_due_accounts",
    "Accounts whose next expiry step (suspend, deactivate) was due at the last pass",
    ["step"],
)
REMINDERS_SENT = Counter("guardbot_nags_sent_total", "Reminders sent to named guests")
NAMED_GUESTS = Gauge(
    "guardbot_named_guests",
    "Named guests by state: registered (reminders going), claimed (password set), stopped"
    " (reminders over, no password), suspended (by expiry), expired (deactivated)",
    ["state"],
)


def start_series(
    action_kinds: Iterable[str],
    action_states: Iterable[str],
    waiting_on: Iterable[str],
    door_callbacks: Iterable[str],
) -> None:
    """Every labelled series at 0 from the start: a query or alert on a counter that has not
    moved yet finds it (absent series read as "no data", not as 0)."""
    kinds, states, on = list(action_kinds), list(action_states), list(waiting_on)
    for kind in kinds:
        for state in states:
            ACTIONS_DONE.labels(kind, state)
        for cause in on:
            ACTIONS_RETRIED.labels(kind, cause)
    for cause in ["nothing", *on]:
        ACTIONS_WAITING.labels(cause)
    for callback in [*door_callbacks, "other"]:
        for answer in ("allowed", "refused", "late", "unsure"):
            DOOR_ANSWERS.labels(callback, answer)
        DOOR_SECONDS.labels(callback)
    for reason in ("missing", "wrong"):
        DOOR_TOKEN_REFUSED.labels(reason)
    for step in ("suspend", "deactivate"):
        EXPIRY_DUE.labels(step)
    for state in ("registered", "claimed", "stopped", "suspended", "expired"):
        NAMED_GUESTS.labels(state)


def serve(listen_address: str) -> None:
    host, _, port = listen_address.rpartition(":")
    start_http_server(int(port), addr=host.strip("[]") or "127.0.0.1")
