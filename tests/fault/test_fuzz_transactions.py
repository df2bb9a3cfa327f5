"""Hostile input on the appservice transaction endpoint, property-based (hypothesis), against
guardbot's real application in-process on a real SQLite database.

What must hold: no 5xx and no dropped connection whatever arrives; a body that is an object
with an events list is accepted (a refusal would make the homeserver resend the same
transaction forever, blocking every later event); a well-formed guest join is kept however
broken the events around it are; a replayed transaction adds nothing, out of order or not; a
wrong or missing token is refused.
"""

from __future__ import annotations

import json
import pathlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzz import DOMAIN, broken_events, guest_join, json_values
from tests.support.harness import SCALE, Secrets
from tests.support.inprocess import InProcessGuardbot, scratch_database
from tests.support.rawhttp import NO_ANSWER, Answer, bearer, request

BOT = f"@guardbot:{DOMAIN}"
FUZZ = settings(
    max_examples=SCALE.fuzz_examples,
    deadline=None,  # one slow example (a big body) is not a failure; the run is bounded
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,  # no .hypothesis directory in the work tree
)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def gb(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, secrets: Secrets
) -> Iterator[InProcessGuardbot]:
    workdir: pathlib.Path = tmp_path_factory.mktemp("fuzz-txn")
    with scratch_database(request.param, workdir) as url:
        yield from serve(workdir, url, secrets)


def serve(workdir: pathlib.Path, url: str, secrets: Secrets) -> Iterator[InProcessGuardbot]:
    env = {
        "GUARDBOT_DATABASE": url,
        "GUARDBOT_HOMESERVER__ADDRESS": "http://127.0.0.1:9",  # never called here
        "GUARDBOT_HOMESERVER__DOMAIN": DOMAIN,
        "GUARDBOT_APPSERVICE__AS_TOKEN": "as-" + secrets_token(),
        "GUARDBOT_APPSERVICE__HS_TOKEN": "hs-" + secrets_token(),
    }
    secrets.add(env["GUARDBOT_APPSERVICE__AS_TOKEN"], env["GUARDBOT_APPSERVICE__HS_TOKEN"])
    server = InProcessGuardbot(workdir, env)
    server.start()
    yield server
    server.stop()
    assert not secrets.found_in(server.log.text()), secrets.found_in(server.log.text())


def secrets_token() -> str:
    return secrets.token_urlsafe(24)


def put(
    gb: InProcessGuardbot,
    txn_id: str | bytes,
    body: bytes,
    token: bytes | None = None,
    timeout: float = 30,
) -> Answer:
    token = token if token is not None else gb.config["appservice.hs_token"].encode()
    path = b"/_matrix/app/v1/transactions/" + quote(txn_id, safe="").encode()
    answer = request(gb.port, b"PUT", path, headers=bearer(token), body=body, timeout=timeout)
    assert answer.status != NO_ANSWER, "connection dropped without an answer"
    assert answer.status < 500, (answer.status, answer.body[:300])
    return answer


def new_txn() -> str:
    return "fuzz-" + secrets.token_hex(8)


def inbox_ids(gb: InProcessGuardbot, event_ids: list[str]) -> list[str]:
    if not event_ids:
        return []
    marks = ", ".join(f"${i + 1}" for i in range(len(event_ids)))
    rows = gb.query(f"SELECT dedup_key FROM inbox WHERE dedup_key IN ({marks})", *event_ids)
    return [r["dedup_key"] for r in rows]


# -- properties -------------------------------------------------------------------------------
@FUZZ
@given(body=st.binary(max_size=2048))
def test_random_bytes_are_answered(gb: InProcessGuardbot, body: bytes) -> None:
    assert put(gb, new_txn(), body).status in (200, 400)


@FUZZ
@given(value=json_values)
def test_any_json_is_answered_and_any_events_list_accepted(
    gb: InProcessGuardbot, value: Any
) -> None:
    for body in (value, {"events": value if isinstance(value, list) else [value]}):
        answer = put(gb, new_txn(), json.dumps(body).encode())
        is_txn = isinstance(body, dict) and isinstance(body.get("events"), list)
        assert answer.status == (200 if is_txn else 400), (answer.status, body)


@FUZZ
@given(broken=st.lists(broken_events(), max_size=8), where=st.integers(0, 8))
def test_a_good_event_beside_broken_ones_is_kept(
    gb: InProcessGuardbot, broken: list[Any], where: int
) -> None:
    good = guest_join(where + 1)
    events = broken[:where] + [good] + broken[where:]
    answer = put(gb, new_txn(), json.dumps({"events": events}).encode())
    assert answer.status == 200, answer.body[:300]
    assert inbox_ids(gb, [good["event_id"]]) == [good["event_id"]]


@FUZZ
@given(
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=6),
    order=st.randoms(use_true_random=False),
    replays=st.integers(0, 6),
)
def test_replayed_and_reordered_transactions_add_nothing_twice(
    gb: InProcessGuardbot, sizes: list[int], order: Any, replays: int
) -> None:
    txns = [(new_txn(), [guest_join(i + k) for k in range(n)]) for i, n in enumerate(sizes)]
    bodies = {t: json.dumps({"events": events}).encode() for t, events in txns}
    sends = [t for t, _ in txns] + [order.choice(txns)[0] for _ in range(replays)]
    order.shuffle(sends)
    for txn_id in sends:
        assert put(gb, txn_id, bodies[txn_id]).status == 200
    ids = [e["event_id"] for _, events in txns for e in events]
    assert sorted(inbox_ids(gb, ids)) == sorted(ids)  # each once (dedup_key is unique)
    rows = gb.query("SELECT txn_id FROM txn WHERE txn_id LIKE 'fuzz-%'")
    assert len({r["txn_id"] for r in rows}) == len(rows)
    # A homeserver whose database was reset reuses an old ID for new events: not a replay.
    reused, _ = txns[0]
    fresh = guest_join(7)
    assert put(gb, reused, json.dumps({"events": [fresh]}).encode()).status == 200
    assert inbox_ids(gb, [fresh["event_id"]]) == [fresh["event_id"]]


@FUZZ
@given(txn_id=st.one_of(st.binary(min_size=1, max_size=300), st.sampled_from([b"\x00", b"\xff"])))
def test_awkward_transaction_ids(gb: InProcessGuardbot, txn_id: bytes) -> None:
    """Any bytes, percent-encoded in the path (not UTF-8, NUL, very long...)."""
    good = guest_join(3)
    body = json.dumps({"events": [good]}).encode()
    assert put(gb, txn_id, body).status == 200
    assert put(gb, txn_id, body).status == 200  # the replay too
    assert inbox_ids(gb, [good["event_id"]]) == [good["event_id"]]


@FUZZ
@given(token=st.binary(max_size=80))
def test_wrong_tokens_are_refused(gb: InProcessGuardbot, token: bytes) -> None:
    real = gb.config["appservice.hs_token"].encode()
    if token == real:
        return
    good = guest_join(5)
    answer = put(gb, new_txn(), json.dumps({"events": [good]}).encode(), token=token)
    # 400: bytes no HTTP header may carry, refused by the HTTP parser itself.
    assert answer.status in (400, 401, 403), answer.status
    assert inbox_ids(gb, [good["event_id"]]) == []


# -- sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [50, 500, 5_000, 200_000])
def test_deep_json(gb: InProcessGuardbot, depth: int) -> None:
    """As the whole body, and as the content of one event beside a good one."""
    deep = "[" * depth + "]" * depth
    assert put(gb, new_txn(), deep.encode()).status == 400
    good = guest_join(11)
    nested = json.dumps(guest_join(12) | {"content": "@@"}).replace('"@@"', deep)
    body = '{"events": [' + nested + ", " + json.dumps(good) + "]}"
    answer = put(gb, new_txn(), body.encode())
    if answer.status == 200:
        assert inbox_ids(gb, [good["event_id"]]) == [good["event_id"]]
    else:  # deeper than any homeserver could have encoded: refused as not JSON
        assert answer.status == 400 and depth > 900, (depth, answer.body[:200])


@pytest.mark.parametrize("junk", ["0", "{}", '"x"', '{"type": "m.room.member"}'])
def test_huge_arrays_are_answered(gb: InProcessGuardbot, junk: str) -> None:
    """A body just under the size limit full of junk events; and one over it. (How long the
    first takes is benchmark 1's figure: bench/intake.py.)"""
    limit = int(gb.config["appservice.max_body_size"])
    good = guest_join(13)
    tail = ", " + json.dumps(good) + "]}"
    count = (limit - len(tail) - 20) // (len(junk) + 2)
    body = ('{"events": [' + ", ".join([junk] * count) + tail).encode()
    answer = put(gb, new_txn(), body, timeout=300)  # a guard against a hang, not a goal
    assert answer.status == 200 and inbox_ids(gb, [good["event_id"]]) == [good["event_id"]]
    assert put(gb, new_txn(), b"[" + b"0," * (limit // 2) + b"0]").status == 413
