"""`python -m bench.timed_guardbot ARGS`: the real `guardbot ARGS`, plus timestamps per
removal written as JSON lines to $BENCH_TIMINGS, so benchmark 2 can tell guardbot's own time
from the homeserver's:

- "received": a transaction with a guest's member event reached the handler (its first line);
- "kick": guardbot is about to send, and has got the answer to, the kick request;
- "request": every call to the homeserver, to take the time spent waiting for it out;
- "span": calls of the database stores and of the evaluator's and executor's passes.

Only wrappers are added (no behaviour changes); wall-clock time, to line up with the
homeserver's `origin_server_ts`.
"""

from __future__ import annotations

import contextvars
import json
import os
import time
from typing import Any

from guardbot.__main__ import main
from guardbot.core.observations import MemberChange
from guardbot.db import ActionStore, DecisionStore, InboxStore
from guardbot.guard import intake as transactions
from guardbot.guard.evaluator import Evaluator
from guardbot.guard.executor import Executor
from guardbot.matrix import client as homeserver

# Line-buffered and never closed: it lives as long as the process, a line per record.
_out = open(os.environ["BENCH_TIMINGS"], "a", buffering=1)
_received: contextvars.ContextVar[float] = contextvars.ContextVar("received", default=0.0)


def _note(**record: Any) -> None:
    _out.write(json.dumps(record) + "\n")


_transaction = transactions.AppserviceAPI.transaction
_parse_events = transactions.parse_events
_kick = homeserver.Homeserver.kick


async def transaction(self: transactions.AppserviceAPI, request: Any) -> Any:
    _received.set(time.time())
    return await _transaction(self, request)


def parse_events(*args: Any, **kwargs: Any) -> Any:
    observations = _parse_events(*args, **kwargs)
    for obs in observations:
        if isinstance(obs, MemberChange):
            _note(what="received", user=obs.user_id, membership=obs.membership, t=_received.get())
    return observations


async def kick(self: homeserver.Homeserver, room_id: str, user_id: str, reason: str) -> None:
    started = time.time()
    await _kick(self, room_id, user_id, reason)
    _note(what="kick", user=user_id, t=started, answered=time.time())


_request = homeserver.Homeserver.request


async def request(self: homeserver.Homeserver, method: str, path: str, *a: Any, **k: Any) -> Any:
    started = time.time()
    try:
        return await _request(self, method, path, *a, **k)
    finally:
        _note(what="request", path=f"{method} {path}", t=started, answered=time.time())


homeserver.Homeserver.request = request  # type: ignore[method-assign]


def _span(cls: type, name: str) -> None:
    """Record each call of cls.name (a coroutine method) as a "span": where the time goes."""
    original = getattr(cls, name)

    async def timed(*args: Any, **kwargs: Any) -> Any:
        started = time.time()
        try:
            return await original(*args, **kwargs)
        finally:
            _note(what="span", name=f"{cls.__name__}.{name}", t=started, answered=time.time())

    setattr(cls, name, timed)


for _cls, _names in (
    (InboxStore, ("record_transaction", "take", "size")),
    (DecisionStore, ("settle",)),
    (ActionStore, ("due", "finish", "next_due_at", "pending")),
    (Evaluator, ("run_once",)),
    (Executor, ("run_once",)),
):
    for _name in _names:
        _span(_cls, _name)
transactions.AppserviceAPI.transaction = transaction  # type: ignore[method-assign]
transactions.parse_events = parse_events
homeserver.Homeserver.kick = kick  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
