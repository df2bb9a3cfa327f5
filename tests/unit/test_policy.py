"""The policy core: which events matter, and what guardbot decides to do about them."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from guardbot.core.observations import (
    BotMembership,
    GuestAccessChange,
    MalformedEvent,
    MemberChange,
    PowerChange,
    RoomListed,
    triage,
)
from guardbot.core.policy import (
    ForbidGuestAccess,
    JoinRoom,
    Kick,
    Policy,
    RoomFacts,
    Sweep,
    Verdict,
    confirm_kick,
    decide_bot_membership,
    decide_guest_access,
    decide_listed,
    decide_member,
    decide_sweep_member,
)
from guardbot.guard.intake import TransactionStats, parse_events

DOMAIN = "example.org"
BOT = "@guardbot:example.org"
ROOM = "!room:example.org"
GUEST = "@1234:example.org"


def member(
    user_id: str = GUEST,
    membership: str = "join",
    *,
    kind: str | None = None,
    prev: str | None = None,
    event_id: str = "$join",
) -> dict[str, Any]:
    content: dict[str, Any] = {"membership": membership}
    if kind is not None:
        content["kind"] = kind
    event: dict[str, Any] = {
        "type": "m.room.member",
        "room_id": ROOM,
        "event_id": event_id,
        "sender": user_id,
        "state_key": user_id,
        "content": content,
    }
    if prev is not None:
        event["unsigned"] = {"prev_content": {"membership": prev}}
    return event


def guest_access(value: str, sender: str = "@alice:example.org", event_id: str = "$ga") -> dict:
    return {
        "type": "m.room.guest_access",
        "room_id": ROOM,
        "event_id": event_id,
        "sender": sender,
        "state_key": "",
        "content": {"guest_access": value},
    }


def facts(policy: Policy = Policy.FORBID, listed: bool = True) -> RoomFacts:
    return RoomFacts(ROOM, listed, policy, kick_reason="no guests", restore_notice="closed again")


def change(membership: str = "join", event_id: str = "$join", user_id: str = GUEST):
    return MemberChange(ROOM, user_id, event_id, membership, None, kind_guest=True)


# -- triage ---------------------------------------------------------------------------------
def test_guest_join_with_kind_guest_is_a_member_change() -> None:
    obs = triage(member(kind="guest", prev="invite"), DOMAIN, BOT)
    assert obs == MemberChange(ROOM, GUEST, "$join", "join", "invite", kind_guest=True)
    assert obs.new_join


def test_rejoin_is_not_a_new_join() -> None:
    obs = triage(member(kind="guest", prev="join"), DOMAIN, BOT)
    assert isinstance(obs, MemberChange) and not obs.new_join


def test_invite_of_numeric_local_user_without_kind_is_a_candidate() -> None:
    obs = triage(member(membership="invite"), DOMAIN, BOT)
    assert isinstance(obs, MemberChange)
    assert (obs.membership, obs.kind_guest, obs.prev_membership) == ("invite", False, None)


@pytest.mark.parametrize("kind", [None, "guest"])
def test_non_numeric_local_user_is_ignored(kind: str | None) -> None:
    assert triage(member("@alice:example.org", kind=kind), DOMAIN, BOT) is None


@pytest.mark.parametrize("membership", ["leave", "ban", "knock"])
def test_guest_leaving_is_ignored(membership: str) -> None:
    assert triage(member(kind="guest", membership=membership), DOMAIN, BOT) is None


def test_remote_user_counts_only_with_kind_guest() -> None:
    assert triage(member("@1234:other.org"), DOMAIN, BOT) is None
    obs = triage(member("@bob:other.org", kind="guest"), DOMAIN, BOT)
    assert isinstance(obs, MemberChange) and obs.user_id == "@bob:other.org"


def test_lookalike_domain_is_remote() -> None:
    assert triage(member("@1234:evil-example.org"), DOMAIN, BOT) is None
    assert triage(member("@1234:example.org.evil"), DOMAIN, BOT) is None


@pytest.mark.parametrize("membership", ["invite", "join", "leave"])
def test_bots_own_membership(membership: str) -> None:
    event = {**member(BOT, membership=membership, event_id="$bot"), "sender": "@alice:x"}
    obs = triage(event, DOMAIN, BOT)
    assert obs == BotMembership(ROOM, "$bot", membership, sender="@alice:x")


def test_guest_access_and_power_levels_events() -> None:
    obs = triage(guest_access("can_join"), DOMAIN, BOT)
    assert obs == GuestAccessChange(ROOM, "$ga", "@alice:example.org", "can_join")
    power = {"type": "m.room.power_levels", "room_id": ROOM, "event_id": "$pl", "state_key": ""}
    assert triage({**power, "content": {}}, DOMAIN, BOT) == PowerChange(ROOM, "$pl")


def test_non_state_lookalikes_and_messages_are_ignored() -> None:
    msg = {"type": "m.room.message", "room_id": ROOM, "event_id": "$m", "content": {"body": "hi"}}
    assert triage(msg, DOMAIN, BOT) is None
    no_state_key = guest_access("can_join")
    del no_state_key["state_key"]
    assert triage(no_state_key, DOMAIN, BOT) is None


def _broken(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    event = member(kind="guest")
    target = event
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return event


_DELETE = object()


@pytest.mark.parametrize(
    "event",
    [
        "not an event",
        ["m.room.member"],
        None,
        _broken(("content",), "join"),
        _broken(("content",), _DELETE),
        _broken(("state_key",), _DELETE),
        _broken(("state_key",), 1234),
        _broken(("state_key",), ""),
        _broken(("content", "membership"), _DELETE),
        _broken(("content", "membership"), ["join"]),
        _broken(("room_id",), _DELETE),
        _broken(("event_id",), None),
        {**guest_access("can_join"), "sender": 5},
        {"type": "m.room.power_levels", "state_key": "", "event_id": "$pl"},
    ],
)
def test_malformed_events_raise(event: Any) -> None:
    with pytest.raises(MalformedEvent):
        triage(event, DOMAIN, BOT)


def test_parse_events_keeps_the_good_events_around_a_bad_one() -> None:
    bad = member("@5678:example.org", kind="guest", event_id="$bad")
    bad["content"] = "join"
    body = {
        "events": [
            member(kind="guest", event_id="$first"),
            bad,
            "garbage",
            {"type": "m.room.message", "room_id": ROOM, "event_id": "$m", "content": {}},
            member("@999:example.org", membership="invite", event_id="$last"),
        ]
    }
    stats = TransactionStats()
    observations = parse_events(body, DOMAIN, BOT, stats)
    assert [o.event_id for o in observations] == ["$first", "$last"]
    assert (stats.events, stats.observed, stats.malformed) == (5, 2, 2)


# -- decide_member ----------------------------------------------------------------------------
@pytest.mark.parametrize("membership", ["join", "invite"])
def test_forbid_room_closes_the_door_then_kicks(membership: str) -> None:
    actions = decide_member(change(membership), facts(Policy.FORBID), Verdict.GUEST)
    assert actions == [
        ForbidGuestAccess(ROOM, cause="$join"),
        Kick(ROOM, GUEST, "no guests", cause="$join"),
    ]


def test_kick_room_only_kicks() -> None:
    actions = decide_member(change(), facts(Policy.KICK), Verdict.GUEST)
    assert actions == [Kick(ROOM, GUEST, "no guests", cause="$join")]


@pytest.mark.parametrize(
    "room",
    [facts(Policy.OFF), facts(Policy.FORBID, listed=False), facts(Policy.KICK, listed=False)],
)
def test_no_action_when_room_not_enforced(room: RoomFacts) -> None:
    assert decide_member(change(), room, Verdict.GUEST) == []


@pytest.mark.parametrize("verdict", [Verdict.NOT_GUEST, Verdict.UNKNOWN])
@pytest.mark.parametrize("policy", [Policy.FORBID, Policy.KICK])
def test_never_kicks_without_guest_verdict(verdict: Verdict, policy: Policy) -> None:
    actions = decide_member(change(), facts(policy), verdict)
    assert not any(isinstance(a, Kick) for a in actions)
    assert decide_sweep_member(facts(policy), GUEST, "$e", "join", verdict) == []


def test_member_change_that_is_not_join_or_invite_does_nothing() -> None:
    assert decide_member(change("leave"), facts(), Verdict.GUEST) == []


# -- decide_guest_access ----------------------------------------------------------------------
def test_opening_a_listed_forbid_room_is_undone_with_a_notice() -> None:
    obs = triage(guest_access("can_join", event_id="$open"), DOMAIN, BOT)
    assert isinstance(obs, GuestAccessChange)
    actions = decide_guest_access(obs, facts(Policy.FORBID), BOT)
    assert actions == [ForbidGuestAccess(ROOM, cause="$open", notice="closed again")]


@pytest.mark.parametrize(
    "room", [facts(Policy.KICK), facts(Policy.OFF), facts(Policy.FORBID, listed=False)]
)
def test_guest_access_left_alone_outside_listed_forbid_rooms(room: RoomFacts) -> None:
    obs = GuestAccessChange(ROOM, "$open", "@alice:example.org", "can_join")
    assert decide_guest_access(obs, room, BOT) == []


def test_guest_access_set_by_bot_or_to_forbidden_is_left_alone() -> None:
    by_bot = GuestAccessChange(ROOM, "$open", BOT, "can_join")
    assert decide_guest_access(by_bot, facts(), BOT) == []
    closed = GuestAccessChange(ROOM, "$close", "@alice:example.org", "forbidden")
    assert decide_guest_access(closed, facts(), BOT) == []


# -- listing, bot membership, sweeping --------------------------------------------------------
def test_decide_listed_per_policy() -> None:
    listing = RoomListed(ROOM, 1000)
    forbid = decide_listed(listing, facts(Policy.FORBID))
    assert [type(a) for a in forbid] == [ForbidGuestAccess, Sweep]
    assert {a.cause for a in forbid} == {"listed:1000"}
    assert decide_listed(listing, facts(Policy.KICK)) == [Sweep(ROOM, cause="listed:1000")]
    assert decide_listed(listing, facts(Policy.OFF)) == []
    assert decide_listed(listing, facts(listed=False)) == []


def test_relisting_gets_new_action_keys() -> None:
    first = decide_listed(RoomListed(ROOM, 1000), facts())
    again = decide_listed(RoomListed(ROOM, 1000), facts())
    later = decide_listed(RoomListed(ROOM, 2000), facts())
    assert [a.key for a in first] == [a.key for a in again]
    assert not {a.key for a in first} & {a.key for a in later}


@pytest.mark.parametrize("room", [facts(), facts(Policy.OFF), facts(listed=False)])
def test_bot_accepts_every_invite(room: RoomFacts) -> None:
    invite = BotMembership(ROOM, "$inv", "invite")
    assert decide_bot_membership(invite, room) == [JoinRoom(ROOM, cause="$inv")]


def test_bot_join_closes_and_sweeps_enforced_rooms_only() -> None:
    join = BotMembership(ROOM, "$botjoin", "join")
    assert decide_bot_membership(join, facts(Policy.FORBID)) == [
        ForbidGuestAccess(ROOM, cause="$botjoin"),
        Sweep(ROOM, cause="$botjoin"),
    ]
    assert decide_bot_membership(join, facts(Policy.KICK)) == [Sweep(ROOM, cause="$botjoin")]
    assert decide_bot_membership(join, facts(Policy.OFF)) == []
    assert decide_bot_membership(join, facts(listed=False)) == []
    assert decide_bot_membership(BotMembership(ROOM, "$left", "leave"), facts()) == []


def test_bot_rejoin_closes_the_room_again() -> None:
    """Each of guardbot's joins is its own cause: a queue that deduplicates on keys forever
    must not swallow the second join's ForbidGuestAccess."""
    first = decide_bot_membership(BotMembership(ROOM, "$join1", "join"), facts())
    second = decide_bot_membership(BotMembership(ROOM, "$join2", "join"), facts())
    assert [type(a) for a in second] == [ForbidGuestAccess, Sweep]
    assert not {a.key for a in first} & {a.key for a in second}


@pytest.mark.parametrize("membership", ["join", "invite"])
def test_sweep_kicks_joined_and_invited_guests(membership: str) -> None:
    actions = decide_sweep_member(facts(Policy.KICK), GUEST, "$m", membership, Verdict.GUEST)
    assert actions == [Kick(ROOM, GUEST, "no guests", cause="$m")]


@pytest.mark.parametrize(
    "room,membership",
    [
        (facts(), "leave"),
        (facts(), "ban"),
        (facts(Policy.OFF), "join"),
        (facts(listed=False), "join"),
    ],
)
def test_sweep_leaves_others_alone(room: RoomFacts, membership: str) -> None:
    assert decide_sweep_member(room, GUEST, "$m", membership, Verdict.GUEST) == []


# -- confirm_kick -----------------------------------------------------------------------------
@pytest.mark.parametrize("policy", [Policy.FORBID, Policy.KICK])
@pytest.mark.parametrize("membership", ["join", "invite"])
def test_confirm_kick_stands(policy: Policy, membership: str) -> None:
    assert confirm_kick(facts(policy), membership, Verdict.GUEST) is None


@pytest.mark.parametrize(
    "room,membership,verdict,why",
    [
        (facts(listed=False), "join", Verdict.GUEST, "no longer listed"),
        (facts(Policy.OFF), "join", Verdict.GUEST, "off"),
        (facts(), "leave", Verdict.GUEST, "leave"),
        (facts(), None, Verdict.GUEST, "never joined"),
        (facts(), "join", Verdict.NOT_GUEST, "not_guest"),
        (facts(), "join", Verdict.UNKNOWN, "unknown"),
    ],
)
def test_confirm_kick_withdrawn(room, membership, verdict, why: str) -> None:
    reason = confirm_kick(room, membership, verdict)
    assert reason is not None and why in reason


# -- action keys ------------------------------------------------------------------------------
def _decisions(event_id: str) -> list:
    return [
        *decide_member(change(event_id=event_id), facts(), Verdict.GUEST),
        *decide_bot_membership(BotMembership(ROOM, event_id, "invite"), facts()),
        *decide_bot_membership(BotMembership(ROOM, event_id, "join"), facts(Policy.KICK)),
        *decide_guest_access(GuestAccessChange(ROOM, event_id, "@a:x", "can_join"), facts(), BOT),
    ]


def test_same_cause_gives_same_keys_and_other_causes_other_keys() -> None:
    first = [a.key for a in _decisions("$e1")]
    assert len(first) == 5
    assert first == [a.key for a in _decisions("$e1")]
    assert not set(first) & {a.key for a in _decisions("$e2")}


def test_sweep_finds_the_same_kick_as_the_join() -> None:
    """A guest whose join was already acted on is not kicked a second time by a sweep."""
    (kick,) = [
        a
        for a in decide_member(change(event_id="$j"), facts(), Verdict.GUEST)
        if isinstance(a, Kick)
    ]
    (swept,) = decide_sweep_member(facts(), GUEST, "$j", "join", Verdict.GUEST)
    assert swept.key == kick.key


def test_key_depends_on_room_and_user() -> None:
    kick = Kick(ROOM, GUEST, "r", cause="$e")
    assert kick.key != Kick("!other:example.org", GUEST, "r", cause="$e").key
    assert kick.key != Kick(ROOM, "@999:example.org", "r", cause="$e").key
    assert kick.key == Kick(ROOM, GUEST, "a different reason", cause="$e").key
    forbid = ForbidGuestAccess(ROOM, cause="$e")
    assert forbid.key == ForbidGuestAccess(ROOM, cause="$e", notice="hello").key
    kinds = {Kick(ROOM, GUEST, "r", "$e").key, forbid.key, Sweep(ROOM, "$e").key}
    assert len(kinds | {JoinRoom(ROOM, "$e").key}) == 4


def test_triage_does_not_modify_the_event() -> None:
    event = member(kind="guest", prev="invite")
    before = copy.deepcopy(event)
    triage(event, DOMAIN, BOT)
    assert event == before
