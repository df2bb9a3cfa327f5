"""Room admins' `!guardbot` commands (guardbot/commands/room.py): the answers they read, and a
policy command that writes the room's policy event only for someone allowed to. Through the
evaluator, against the scripted homeserver (tests/support/fake_homeserver.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from devtools.guard_loop import GuardLoop
from guardbot.commands.parsing import Command
from guardbot.commands.room import RoomCommandFacts, RoomCommands
from guardbot.core.actions import SetRoomPolicy
from guardbot.core.decision import NOTHING
from guardbot.core.observations import POLICY_EVENT, ConversationMember, Message
from guardbot.core.policy import Policy
from guardbot.core.power import RoomPower
from tests.support.conversation import say
from tests.support.fake_homeserver import FakeHomeserver

ROOM, MGMT = "!room:example.org", "!mgmt:example.org"
BOT, ALICE, MALLORY = "@guardbot:example.org", "@alice:example.org", "@mallory:example.org"
Loop = Callable[..., Awaitable[GuardLoop]]


def powered(hs: FakeHomeserver, bot: int = 100) -> None:
    hs.room(ROOM).set("m.room.power_levels", {"users": {ALICE: 100, BOT: bot}})


async def test_help_and_an_unknown_command_are_answered(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    guard = await guard_on_fake(listed=[ROOM])
    helped = await say(guard, ROOM, "!guardbot help", ALICE)
    assert "!guardbot status" in helped.answer and "!guardbot policy" in helped.answer
    unknown = await say(guard, ROOM, "!guardbot frobnicate", ALICE)
    assert unknown.answer == "Unknown command 'frobnicate'. Try !guardbot help"
    assert (await say(guard, ROOM, "just chatting", ALICE)).answer == ""


async def test_status_says_what_applies_here_and_what_guardbot_lacks(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    powered(fake_hs, bot=0)
    guard = await guard_on_fake(listed=[ROOM], policy=Policy.KICK)
    lines = (await say(guard, ROOM, "!guardbot status", ALICE)).answer.splitlines()
    assert lines[0] == "guardbot status for this room"
    assert "• listed in the public room directory: yes" in lines
    assert "• policy: kick, from the server default" in lines
    assert "• what guardbot does here now: kick guests" in lines
    assert "• guests removed here: 0" in lines
    assert lines[-1] == "• guardbot is missing: power to kick (level 50)"


async def test_a_room_admin_sets_the_policy_through_its_state_event(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    powered(fake_hs)
    guard = await guard_on_fake(listed=[ROOM])
    said = await say(guard, ROOM, "!guardbot policy kick we like our guests gone", ALICE)
    content = {"listed_rooms": "kick", "set_by": ALICE, "reason": "we like our guests gone"}
    assert said.actions == [SetRoomPolicy(ROOM, content, cause=said.actions[0].cause)]
    assert said.answer == ""  # the event, once sent, is answered like any policy change


async def test_the_policy_command_refuses_who_or_what_is_not_allowed(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    powered(fake_hs)
    guard = await guard_on_fake(listed=[ROOM])
    mallory = await say(guard, ROOM, "!guardbot policy kick", MALLORY)
    assert mallory.answer == "You need power level 50 to change guardbot's policy in this room."
    off = await say(guard, ROOM, "!guardbot policy off", ALICE)
    assert off.answer.startswith("The server admin does not let rooms choose 'off' here")
    usage = await say(guard, ROOM, "!guardbot policy ban", ALICE)
    assert usage.answer == "Usage: !guardbot policy forbid|kick|off [reason]"
    assert mallory.actions == off.actions == usage.actions == []
    powered(fake_hs, bot=0)
    weak = await say(guard, ROOM, "!guardbot policy kick", ALICE)
    assert weak.answer.startswith("guardbot needs power level 50 to write the policy event")
    assert POLICY_EVENT in weak.answer and weak.actions == []


async def test_the_management_room_and_what_is_not_a_message_are_left_to_others(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    guard = await guard_on_fake(listed=[ROOM], management_room=MGMT)
    commands = next(d for d in guard.evaluator.deciders if isinstance(d, RoomCommands))
    in_mgmt = Message(MGMT, "$m", ALICE, "!guardbot help")
    assert await commands.gather(in_mgmt) is None
    left = ConversationMember(ROOM, "$l", ALICE, "leave")
    facts = RoomCommandFacts(Command("help", (), ""), power=RoomPower({}))
    assert commands.decide(left, facts, 0) == NOTHING
