"""The management room (guardbot/commands/management.py): what server admins read in answer
to each command, and what `sweep` and `dryrun` change. Through the evaluator, against the
scripted homeserver (tests/support/fake_homeserver.py), on every supported database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from devtools.guard_loop import GuardLoop
from guardbot.commands.management import Management, ManagementFacts
from guardbot.commands.parsing import Command
from guardbot.core.actions import ForbidGuestAccess, Sweep
from guardbot.core.decision import GLOBAL, NOTHING
from guardbot.core.observations import ConversationMember, Message
from guardbot.core.policy import Policy
from tests.support.conversation import say
from tests.support.fake_homeserver import FakeHomeserver

MGMT, LISTED, OTHER = "!mgmt:example.org", "!listed:example.org", "!other:example.org"
ADMIN, GUEST = "@admin:example.org", "@7:example.org"
Loop = Callable[..., Awaitable[GuardLoop]]


async def managed(guard_on_fake: Loop, policy: Policy = Policy.FORBID) -> GuardLoop:
    return await guard_on_fake(listed=[LISTED], policy=policy, management_room=MGMT)


async def test_help_status_and_rooms_answer_what_guardbot_knows(guard_on_fake: Loop) -> None:
    guard = await managed(guard_on_fake)
    assert "explain <user> <room>" in (await say(guard, MGMT, "help", ADMIN)).answer
    status = (await say(guard, MGMT, "!guardbot status", ADMIN)).answer.splitlines()
    assert status[0] == "guardbot status"
    assert "• listed rooms: 1" in status
    assert "• guests removed today (UTC): 0" in status
    assert "• server admin rights: yes" in status
    assert "• dry-run everywhere: off" in status
    rooms = (await say(guard, MGMT, "rooms", ADMIN)).answer.splitlines()
    assert rooms[0] == "Listed rooms (1):"
    assert rooms[1].startswith(f"• {LISTED}: forbid (from the server default)")
    unknown = (await say(guard, MGMT, "sweep", ADMIN)).answer
    assert unknown == "Unknown or incomplete command 'sweep'; try help"


async def test_sweep_queues_the_rooms_policy_for_everyone_in_it(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    guard = await managed(guard_on_fake)
    said = await say(guard, MGMT, f"sweep {LISTED}", ADMIN)
    assert said.answer == f"Sweeping {LISTED} (forbid); 2 actions queued."
    assert [type(a) for a in said.actions] == [ForbidGuestAccess, Sweep]
    story = await guard.decisions.audit.find(room_id=LISTED)
    assert [(e.actor, e.what) for e in story] == [
        (ADMIN, "decide ForbidGuestAccess"),
        (ADMIN, "decide Sweep"),
    ]
    fake_hs.aliases["#lobby:example.org"] = OTHER
    unlisted = await say(guard, MGMT, "sweep #lobby:example.org", ADMIN)
    assert unlisted.answer == f"{OTHER} is not listed: there is nothing to sweep."
    assert unlisted.actions == []


async def test_explain_tells_why_guardbot_removes_someone_or_not(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    fake_hs.user(GUEST, guest=True)
    fake_hs.room(LISTED).member(GUEST, kind="guest")
    guard = await managed(guard_on_fake)
    lines = (await say(guard, MGMT, f"explain {GUEST} {LISTED}", ADMIN)).answer.splitlines()
    assert lines[0] == f"{GUEST} in {LISTED}"
    assert "• membership: join" in lines and "• guest: guest" in lines
    missing = "power to kick (level 50), power to change guest access (level 50)"
    assert f"• guardbot's power: missing {missing}" in lines
    assert f"• verdict: no — guardbot is missing {missing}" in lines
    fake_hs.room(LISTED).set("m.room.power_levels", {"users": {fake_hs.bot_user_id: 100}})
    lines = (await say(guard, MGMT, f"explain {GUEST} {LISTED}", ADMIN)).answer.splitlines()
    assert "• verdict: guardbot removes them" in lines


async def test_dry_run_is_switched_everywhere_or_for_one_room(guard_on_fake: Loop) -> None:
    guard = await managed(guard_on_fake)
    said = await say(guard, MGMT, "dryrun on", ADMIN)
    assert said.answer.startswith("Dry-run is now on everywhere")
    assert guard.rooms.dry_runs == {GLOBAL: True}
    assert (await guard.rooms.facts(LISTED)).dry_run
    said = await say(guard, MGMT, f"dryrun off {LISTED}", ADMIN)
    assert said.answer == f"Dry-run is now off in {LISTED}."
    assert not (await guard.rooms.facts(LISTED)).dry_run
    assert (await guard.rooms.facts(OTHER)).dry_run
    assert await guard.decisions.settings.dry_runs() == {GLOBAL: True, LISTED: False}


async def test_named_guest_commands_say_so_when_named_guests_are_off(guard_on_fake: Loop) -> None:
    guard = await managed(guard_on_fake)
    said = await say(guard, MGMT, "pwlu list", ADMIN)
    assert said.answer == "PWLU support is not enabled on this guardbot."


async def test_only_messages_in_the_management_room_are_its_commands(guard_on_fake: Loop) -> None:
    guard = await managed(guard_on_fake)
    management = next(d for d in guard.evaluator.deciders if isinstance(d, Management))
    assert await management.gather(Message(LISTED, "$m", ADMIN, "status")) is None
    joined = ConversationMember(MGMT, "$j", ADMIN, "join")
    facts = ManagementFacts(Command("status", (), ""), lines=["x"])
    assert management.decide(joined, facts, 0) == NOTHING
    assert (await say(guard, LISTED, "status", ADMIN)).answer == ""
