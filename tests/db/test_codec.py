"""How observations and actions are stored (db/codec.py): as their kind and JSON, and read back
equal, for every kind there is."""

from __future__ import annotations

import json

import pytest

from guardbot.core.actions import ACTIONS, Kick, Notice, Remind
from guardbot.core.observations import OBSERVATIONS, MemberChange, RoomPolicyChange
from guardbot.db.codec import decode_action, decode_observation, encode


@pytest.mark.parametrize(
    "value",
    [
        Kick("!r:example.org", "@7:example.org", "no guests", "$join"),
        Notice("!r:example.org", "hi <you>", "<b>hi</b>", "$cmd"),
        Remind("@named:example.org", 2, 1000, "500"),
    ],
    ids=lambda v: type(v).__name__,
)
def test_an_action_comes_back_as_it_went_in(value: object) -> None:
    kind, payload = encode(value)  # type: ignore[arg-type]
    assert kind == type(value).__name__ and json.loads(payload)
    assert decode_action(kind, payload) == value


def test_an_observation_comes_back_as_it_went_in() -> None:
    for value in (
        MemberChange("!r:example.org", "@7:example.org", "$j", "join", None, True),
        RoomPolicyChange("!r:example.org", "$p", "@a:example.org", {"listed_rooms": "kick"}),
    ):
        assert decode_observation(*encode(value)) == value


def test_each_kind_is_known_by_its_class_name() -> None:
    assert all(name == cls.__name__ for name, cls in ACTIONS.items())
    assert all(name == cls.__name__ for name, cls in OBSERVATIONS.items())
    with pytest.raises(KeyError):
        decode_action("Ban", "{}")
