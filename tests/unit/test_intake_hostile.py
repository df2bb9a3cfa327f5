"""Intake against input the fault suite's fuzzing found hostile (tests/fault): each case here
failed a whole transaction once, and a refused transaction is resent by the homeserver for
ever, holding back every event after it."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY

from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.observations import MemberChange
from guardbot.guard.intake import AppserviceAPI, parse_events

DOMAIN = "example.org"
BOT = "@guardbot:example.org"


def malformed_so_far() -> float:
    """What guardbot_events_malformed_total says, the count an operator sees."""
    return REGISTRY.get_sample_value("guardbot_events_malformed_total") or 0.0


def guest_join(event_id: str = "$good") -> dict:
    return {
        "type": "m.room.member",
        "room_id": "!r:example.org",
        "event_id": event_id,
        "sender": "@7:example.org",
        "state_key": "@7:example.org",
        "content": {"membership": "join", "kind": "guest"},
    }


def test_a_room_id_of_the_wrong_type_costs_only_its_own_event() -> None:
    broken = [
        guest_join("$list") | {"room_id": []},
        guest_join("$dict") | {"room_id": {"a": 1}},
        {
            "type": "m.room.message",
            "room_id": [1],
            "event_id": "$m",
            "sender": "@a:b",
            "content": {"body": "hello"},
        },
    ]
    before = malformed_so_far()
    observations = parse_events(
        {"events": [*broken, guest_join()]}, DOMAIN, BOT, {"!dm:example.org"}
    )
    assert [o.event_id for o in observations] == ["$good"]
    assert isinstance(observations[0], MemberChange)
    assert (
        malformed_so_far() - before == 2
    )  # the member events; the chat is simply not for guardbot


def test_a_token_that_is_not_utf8_is_refused_not_an_error() -> None:
    """aiohttp hands undecodable header bytes over as lone surrogates; encoding those strictly
    raised, and the homeserver's transaction got a 500 instead of a 403."""
    api = AppserviceAPI("hs-token", DOMAIN, BOT, None, Wakeup(), (), Clock())  # type: ignore[arg-type]
    for token in ("\udc80", "hs-token\udcff", "h\udcc3\udca9"):
        refused = api._refuse(with_auth(f"Bearer {token}"))
        assert refused is not None and refused.status == 403
    assert api._refuse(with_auth("Bearer hs-token")) is None


def with_auth(header: str) -> Any:
    # make_mocked_request encodes its headers, so it cannot carry what aiohttp's parser gives.
    return SimpleNamespace(headers={"Authorization": header}, query={})


def test_many_malformed_events_cost_a_few_log_lines(caplog: pytest.LogCaptureFixture) -> None:
    """A body of junk events (the homeserver sends at most 100, but a broken or hostile one
    may send a whole body of them) once logged a warning per event: millions of lines, and
    minutes with the event loop blocked. The count is kept; the lines are a few."""
    before = malformed_so_far()
    junk = ["x", 0, guest_join("$bad") | {"state_key": 5}] * 2000
    with caplog.at_level(logging.DEBUG, logger="guardbot"):
        observations = parse_events({"events": [*junk, guest_join()]}, DOMAIN, BOT)
    assert [o.event_id for o in observations] == ["$good"]
    assert malformed_so_far() - before == len(junk)
    assert 1 <= len(caplog.records) <= 10
    assert str(len(junk)) in caplog.text  # the summary says how many


def test_identifiers_no_database_can_store_make_their_event_malformed() -> None:
    """A NUL (PostgreSQL refuses it in text) or a lone surrogate (no UTF-8 for it) in an ID
    that becomes a database key failed the transaction with a 500."""
    before = malformed_so_far()
    broken = [
        guest_join("$nul\x00"),
        guest_join("$surrogate\ud800"),
        guest_join("$room") | {"room_id": "!r\x00:example.org"},
        guest_join("$control\x1b[31m"),
    ]
    observations = parse_events({"events": [*broken, guest_join()]}, DOMAIN, BOT)
    assert [o.event_id for o in observations] == ["$good"]
    assert malformed_so_far() - before == len(broken)
