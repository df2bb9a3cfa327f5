"""Decisions (guardbot/core/decision.py): what one observation asks for, added up in order."""

from __future__ import annotations

from guardbot.core.actions import JoinRoom, Kick, Sweep
from guardbot.core.decision import NOTHING, AuditRecord, Decision, RoomWoken

ROOM = "!room:example.org"


def test_decisions_add_up_keeping_each_part_in_order() -> None:
    kick, sweep = Kick(ROOM, "@7:example.org", "no", "$j"), Sweep(ROOM, "$s")
    audit = AuditRecord(1, "guardbot", "decide Kick", ROOM, "@7:example.org", "why", "queued")
    first = Decision(actions=(kick,), audit=(audit,))
    second = Decision(actions=(sweep,), records=(RoomWoken(ROOM),))
    both = first + second
    assert both.actions == (kick, sweep)
    assert both.audit == (audit,) and both.records == (RoomWoken(ROOM),)
    assert (second + first).actions == (sweep, kick)


def test_nothing_adds_nothing() -> None:
    join = Decision(actions=(JoinRoom(ROOM, "$inv"),))
    assert NOTHING + join == join == join + NOTHING
    assert NOTHING.actions == NOTHING.audit == NOTHING.records == ()
