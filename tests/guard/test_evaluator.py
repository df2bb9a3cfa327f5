"""The evaluator (guard/evaluator.py): each observation in the inbox is decided on the facts
gathered for it (reads) and stored with its decision, in the order it came; one the homeserver
refuses facts for, or a bug, never holds back the rest. Against the scripted homeserver
(tests/support/fake_homeserver.py), on every supported database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from devtools.guard_loop import GuardLoop
from guardbot.core.clock import Clock
from guardbot.core.decision import RoomPolicySetting
from guardbot.core.observations import (
    POLICY_EVENT,
    BotMembership,
    MemberChange,
    RoomPolicyChange,
)
from guardbot.core.policy import Policy
from guardbot.matrix.client import HomeserverError
from tests.support.fake_homeserver import FakeHomeserver, error
from tests.support.queries import action_history

BOT = "@guardbot:example.org"
ROOM, MGMT = "!listed:example.org", "!mgmt:example.org"
GUEST = "@7:example.org"
Loop = Callable[..., Awaitable[GuardLoop]]


async def decide(guard: GuardLoop, *observations: Any) -> list[tuple[str, str | None]]:
    """The observations through the inbox and the evaluator: the actions queued (kind, user)."""
    await guard.inbox.add(list(observations), Clock().now_ms())
    await guard.evaluator.run_once()
    return [(a["kind"], a["user_id"]) for a in await action_history(guard.actions.db)]


def joined(user: str, event_id: str = "$join", kind_guest: bool = True) -> MemberChange:
    return MemberChange(ROOM, user, event_id, "join", None, kind_guest)


async def test_a_guests_join_is_decided_on_the_homeservers_word(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    fake_hs.user(GUEST, guest=True)
    fake_hs.user("@8:example.org", guest=False)  # a full account whose event still says guest
    guard = await guard_on_fake(listed=[ROOM], policy=Policy.KICK)
    queued = await decide(guard, joined(GUEST, "$a"), joined("@8:example.org", "$b"))
    assert queued == [("Kick", GUEST)]
    assert await guard.inbox.size() == 0  # both settled
    story = await guard.decisions.audit.find(room_id=ROOM)
    assert [(e.what, e.user_id) for e in story] == [("decide Kick", GUEST)]


async def test_only_a_server_admin_brings_guardbot_into_the_management_room(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    fake_hs.user("@mallory:example.org")
    fake_hs.user("@admin:example.org", admin=True)
    guard = await guard_on_fake(management_room=MGMT)
    refused = BotMembership(MGMT, "$inv1", "invite", "@mallory:example.org")
    assert await decide(guard, refused) == []
    (entry,) = await guard.decisions.audit.find(room_id=MGMT)
    assert "refused" in entry.result and entry.actor == "@mallory:example.org"
    allowed = BotMembership(MGMT, "$inv2", "invite", "@admin:example.org")
    assert await decide(guard, allowed) == [("JoinRoom", None)]


async def test_a_policy_event_counts_only_from_someone_with_the_power_to_send_it(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    room = fake_hs.room(ROOM)
    levels = {"users": {"@alice:example.org": 100}, "events": {POLICY_EVENT: 50}}
    room.set("m.room.power_levels", levels)
    guard = await guard_on_fake(listed=[ROOM], policy=Policy.FORBID)
    kick = {"listed_rooms": "kick"}
    await decide(guard, RoomPolicyChange(ROOM, "$p1", "@mallory:example.org", kick))
    assert guard.rooms.policies == {}
    await decide(guard, RoomPolicyChange(ROOM, "$p2", "@alice:example.org", kick))
    assert guard.rooms.policies[ROOM].policy == "kick"  # remembered at once
    assert (await guard.rooms.facts(ROOM)).policy is Policy.KICK


async def test_guardbot_joining_a_room_applies_the_policy_in_its_state(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    room = fake_hs.room(ROOM)
    room.set("m.room.power_levels", {"users": {"@alice:example.org": 100}})
    room.set(POLICY_EVENT, {"listed_rooms": "kick"}, sender="@alice:example.org")
    guard = await guard_on_fake(listed=[ROOM], policy=Policy.FORBID)
    queued = await decide(guard, BotMembership(ROOM, "$botjoin", "join"))
    assert queued == [("Notice", None), ("Sweep", None)]  # no ForbidGuestAccess: kick here
    setting = guard.rooms.policies[ROOM]
    assert isinstance(setting, RoomPolicySetting) and setting.policy == "kick"


@pytest.mark.parametrize("status", [403, 404])
async def test_a_refusal_for_good_does_not_hold_back_the_inbox(
    fake_hs: FakeHomeserver, guard_on_fake: Loop, status: int
) -> None:
    """An observation whose facts the homeserver refuses for good (4xx: guardbot is not in
    that room, no such room) is dropped with a warning; only an unreachable or failing
    homeserver keeps it for later. Before, any refusal kept the row at the head of the inbox
    and retried it for ever, so nothing after it was ever decided: one `dev.guardbot.policy`
    event in a room guardbot cannot read (anyone can make one: their own room, a guest in it)
    stopped all enforcement. Found by the fault suite's live hostile-input run."""
    fake_hs.script("state m.room.power_levels", error(status, "M_FORBIDDEN", "User not in room"))
    guard = await guard_on_fake()
    policy = RoomPolicyChange(
        "!unseen:example.org", "$policy", "@mallory:example.org", {"listed_rooms": "off"}
    )
    invite = BotMembership("!next:example.org", "$invite", "invite", "@alice:example.org")
    assert await decide(guard, policy, invite) == [("JoinRoom", None)]
    assert await guard.inbox.size() == 0


async def test_an_unreachable_homeserver_keeps_the_row_for_later(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    guard = await guard_on_fake()
    await fake_hs.close()  # the homeserver is down
    policy = RoomPolicyChange("!r:example.org", "$p", "@mallory:example.org", {})
    await guard.inbox.add([policy], Clock().now_ms())
    with pytest.raises(HomeserverError):
        await guard.evaluator.run_once()
    assert await guard.inbox.size() == 1


async def test_when_the_homeserver_answers_again_every_listed_room_is_swept(
    fake_hs: FakeHomeserver, guard_on_fake: Loop
) -> None:
    guard = await guard_on_fake(listed=[ROOM, "!other:example.org"], policy=Policy.KICK)
    guard.inbox_wakeup.homeserver_back()  # what the client does when a request works again
    await guard.evaluator.step()
    history = await action_history(guard.actions.db)
    assert sorted((a["kind"], a["room_id"]) for a in history) == [
        ("Sweep", "!listed:example.org"),
        ("Sweep", "!other:example.org"),
    ]
