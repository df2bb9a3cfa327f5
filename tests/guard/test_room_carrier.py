"""The room carrier (guard/room_carrier.py): each room action is carried out as it stands now:
the facts gathered again, confirmed by the core's rule, then done at the homeserver, or
skipped and why. Through the executor (as the app runs it), against the scripted homeserver
(tests/support/fake_homeserver.py), on every supported database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from devtools.guard_loop import GuardLoop
from guardbot.core import observations
from guardbot.core.actions import (
    ForbidGuestAccess,
    JoinRoom,
    Kick,
    Notice,
    SetRoomPolicy,
    ShieldFormerGuest,
    Sweep,
)
from guardbot.core.clock import Clock
from guardbot.core.observations import FormerGuestsFound, MemberFound
from guardbot.core.policy import Policy
from tests.support.fake_homeserver import FakeHomeserver, error
from tests.support.queries import action_history

ROOM, USER = "!room:example.org", "@42:example.org"
BOT = "@guardbot:example.org"
Loop = Callable[..., Awaitable[GuardLoop]]


async def carry_out(guard: GuardLoop, *actions: Any) -> list[dict[str, Any]]:
    """The actions queued and carried out; their rows as stored after."""
    await guard.actions.add(list(actions), Clock().now_ms())
    await guard.executor.run_once()
    return await action_history(guard.actions.db)


async def found(guard: GuardLoop) -> list[Any]:
    """What the carrier found, waiting in the inbox for a decision."""
    return [row.observation for row in await guard.inbox.take()]


@pytest.fixture
def loop(guard_on_fake: Loop) -> Loop:
    """guardbot on the scripted homeserver, ROOM listed unless told otherwise."""

    async def make(**kw: Any) -> GuardLoop:
        return await guard_on_fake(**{"listed": [ROOM], **kw})

    return make


async def test_a_guest_is_kicked_with_the_rooms_reason(fake_hs: FakeHomeserver, loop: Loop) -> None:
    fake_hs.user(USER, guest=True)
    fake_hs.room(ROOM).member(USER, kind="guest")
    guard = await loop()
    (row,) = await carry_out(guard, Kick(ROOM, USER, "no guests here", "$join"))
    assert row["state"] == "done" and USER in row["outcome"]
    (kick,) = fake_hs.called("kick")
    assert kick.body == {"user_id": USER, "reason": "no guests here"}
    assert fake_hs.room(ROOM).membership(USER) == "leave"


async def test_a_guest_already_gone_or_no_guest_is_not_kicked(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    gone, upgraded = "@43:example.org", "@44:example.org"
    fake_hs.user(gone, guest=True)
    fake_hs.user(upgraded, guest=False)
    room = fake_hs.room(ROOM)
    room.member(gone, "leave")
    room.member(upgraded, kind="guest")  # the stale hint of an upgraded guest
    guard = await loop()
    rows = await carry_out(
        guard, Kick(ROOM, gone, "no guests", "$a"), Kick(ROOM, upgraded, "no guests", "$b")
    )
    assert [(r["user_id"], r["state"]) for r in rows] == [
        (gone, "skipped"),
        (upgraded, "skipped"),
    ]
    assert "already gone" in rows[0]["outcome"] and "not certainly a guest" in rows[1]["outcome"]
    assert fake_hs.called("kick") == []


async def test_dry_run_says_what_it_would_do_and_does_nothing(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    fake_hs.user(USER, guest=True)
    fake_hs.room(ROOM).member(USER, kind="guest")
    guard = await loop(config={"policy.dry_run": True})
    (row,) = await carry_out(guard, Kick(ROOM, USER, "no guests", "$join"))
    assert row["state"] == "dry_run" and "would remove" in row["outcome"]
    assert fake_hs.called("kick") == []
    assert fake_hs.room(ROOM).membership(USER) == "join"


async def test_a_kick_that_reached_the_homeserver_before_a_crash_is_not_sent_again(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    fake_hs.user(USER, guest=True)
    guard = await loop()
    await guard.actions.add([Kick(ROOM, USER, "no guests", "$join")], Clock().now_ms())
    (queued,) = await guard.actions.due(Clock().now_ms())
    await guard.actions.started(queued.id, Clock().now_ms())  # begun, then the crash
    fake_hs.room(ROOM).member(USER, "leave", sender=BOT, reason="no guests")  # it landed
    await guard.executor.run_once()
    (row,) = await action_history(guard.actions.db)
    assert row["state"] == "done" and "before a restart" in row["outcome"]
    assert fake_hs.called("kick") == []


async def test_a_guest_upgraded_right_after_its_kick_is_not_kicked_again(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    """A guest kicked and upgraded at once (an upgrade sends no event), then back in the room:
    the next decision about them asks the homeserver again, instead of trusting the "guest"
    answer of the kick a moment ago. Found by the PostgreSQL-restart storm: a full account
    kicked within a second of its upgrade."""
    account = fake_hs.user(USER, guest=True)
    room = fake_hs.room(ROOM)
    room.member(USER, kind="guest")
    guard = await loop()
    now = Clock().now_ms()
    await guard.actions.add([Kick(ROOM, USER, "no guests", "$join")], now)
    await guard.executor.run_once()
    assert len(fake_hs.called("kick")) == 1
    account["is_guest"] = False  # upgraded
    room.member(USER, kind="guest")  # back in at once; the old hint stays on the event
    # Decided (say from a sweep) within the same second.
    await guard.actions.add([Kick(ROOM, USER, "no guests", "$join-again")], now)
    await guard.executor.run_once()
    assert len(fake_hs.called("kick")) == 1, "a full account was kicked on its last answer"
    assert len(fake_hs.called("admin_user")) == 2
    states = [h["state"] for h in await action_history(guard.actions.db)]
    assert sorted(states) == ["done", "skipped"]


async def test_forbid_closes_the_room_and_says_why(fake_hs: FakeHomeserver, loop: Loop) -> None:
    fake_hs.room(ROOM).set("m.room.guest_access", {"guest_access": "can_join"})
    guard = await loop(policy=Policy.FORBID)
    (row,) = await carry_out(guard, ForbidGuestAccess(ROOM, "$open", notice="Closed again."))
    assert row["state"] == "done" and "set guest_access to forbidden" in row["outcome"]
    assert fake_hs.room(ROOM).get("m.room.guest_access")["content"] == {"guest_access": "forbidden"}
    (said,) = fake_hs.sent()
    assert said["content"]["body"] == "Closed again."


async def test_forbid_in_a_room_already_closed_or_not_forbid_does_nothing(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    fake_hs.room(ROOM).set("m.room.guest_access", {"guest_access": "forbidden"})
    guard = await loop(policy=Policy.FORBID)
    (row,) = await carry_out(guard, ForbidGuestAccess(ROOM, "$a"))
    assert (row["state"], row["outcome"]) == ("skipped", "guest_access was already forbidden")
    kick_only = await loop(policy=Policy.KICK)
    await carry_out(kick_only, ForbidGuestAccess(ROOM, "$b"))
    rows = await action_history(guard.actions.db)
    assert rows[-1]["state"] == "skipped" and "forbid policy" in rows[-1]["outcome"]
    assert fake_hs.called("send_state m.room.guest_access") == []


async def test_forbid_shields_former_guests_first(fake_hs: FakeHomeserver, loop: Loop) -> None:
    """Synapse removes every member whose member event says guest when a room is closed to
    guests, upgraded former guests too: they are found first, for a decision to shield them."""
    former, guest = "@50:example.org", "@51:example.org"
    fake_hs.user(former, guest=False)
    fake_hs.user(guest, guest=True)
    room = fake_hs.room(ROOM)
    room.member(former, kind="guest")
    room.member(guest, kind="guest")
    guard = await loop(policy=Policy.FORBID)
    (row,) = await carry_out(guard, ForbidGuestAccess(ROOM, "$join", notice="closed"))
    assert row["state"] == "done" and "1 former guests" in row["outcome"]
    assert fake_hs.called("send_state m.room.guest_access") == []  # not yet
    (obs,) = await found(guard)
    assert isinstance(obs, FormerGuestsFound) and list(obs.user_ids) == [former]


async def test_a_former_guest_is_shielded_by_their_own_member_event_without_kind(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    fake_hs.user(USER, guest=False)
    fake_hs.room(ROOM).member(USER, kind="guest")
    guard = await loop(policy=Policy.FORBID)
    (row,) = await carry_out(guard, ShieldFormerGuest(ROOM, USER, "$join"))
    assert row["state"] == "done"
    (sent,) = fake_hs.called("send_state m.room.member")
    assert sent.body == {"membership": "join"} and sent.query == {"user_id": USER}
    assert fake_hs.room(ROOM).get("m.room.member", USER)["sender"] == USER
    # Still a guest: left as it is.
    guest = "@52:example.org"
    fake_hs.user(guest, guest=True)
    fake_hs.room(ROOM).member(guest, kind="guest")
    await carry_out(guard, ShieldFormerGuest(ROOM, guest, "$join2"))
    assert len(fake_hs.called("send_state m.room.member")) == 1


async def test_a_sweep_finds_the_guest_candidates_for_a_decision(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    room = fake_hs.room(ROOM)
    room.member("@60:example.org", kind="guest")  # a local guest, by its hint
    room.member("@61:example.org", "invite")  # numeric: could be a guest
    room.member("@alice:example.org")  # a named user: never a guest
    room.member("@62:example.org", "leave")  # gone
    room.member("@bob:remote.example", kind="guest")  # another server's guest
    guard = await loop(policy=Policy.KICK)
    (row,) = await carry_out(guard, Sweep(ROOM, "$s"))
    assert row["state"] == "done"
    seen = await found(guard)
    assert all(isinstance(o, MemberFound) for o in seen)
    assert sorted(o.user_id for o in seen) == [
        "@60:example.org",
        "@61:example.org",
        "@bob:remote.example",
    ]
    assert fake_hs.called("kick") == []  # decided later, one by one


async def test_a_join_refused_goes_through_the_admin_api(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    fake_hs.script("join", error(403, "M_FORBIDDEN", "You are not invited to this room."))
    guard = await loop(listed=[])
    (row,) = await carry_out(guard, JoinRoom("!new:example.org", "$tomb"))
    assert (row["state"], row["outcome"]) == ("done", "joined through the admin API")
    assert [c.route for c in fake_hs.called() if c.method == "POST"] == ["join", "admin_join"]
    assert fake_hs.room("!new:example.org").membership(BOT) == "join"


async def test_a_notice_and_a_policy_event_are_sent_as_decided(
    fake_hs: FakeHomeserver, loop: Loop
) -> None:
    fake_hs.room(ROOM)
    guard = await loop()
    content = {"listed_rooms": "kick", "set_by": "@alice:example.org"}
    rows = await carry_out(
        guard,
        Notice(ROOM, "hello", "<b>hello</b>", "$cmd"),
        SetRoomPolicy(ROOM, content, "$cmd"),
    )
    assert [r["state"] for r in rows] == ["done", "done"]
    (said,) = fake_hs.sent()
    assert said["content"]["formatted_body"] == "<b>hello</b>"
    assert said["unsigned"]["transaction_id"] == f"guardbot-{rows[0]['id']}"
    assert fake_hs.room(ROOM).get(observations.POLICY_EVENT)["content"] == content
