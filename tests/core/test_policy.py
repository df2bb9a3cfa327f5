"""The policy core: what guardbot decides for each observation, given the facts gathered for it.
Every rule is here once; the executor's re-check, `explain` and the commands call the same
functions, so these tests pin the behaviour of all of them."""

from __future__ import annotations

from dataclasses import replace
from functools import partial

import pytest

from guardbot.core.actions import (
    ForbidGuestAccess,
    JoinRoom,
    Kick,
    Notice,
    SetRoomPolicy,
    ShieldFormerGuest,
    Sweep,
)
from guardbot.core.decision import (
    GLOBAL,
    NOTHING,
    AuditRecord,
    RoomClassified,
    RoomPolicySetting,
    RoomWoken,
)
from guardbot.core.observations import (
    BotMembership,
    FormerGuestsFound,
    GuardbotOutside,
    GuestAccessChange,
    HomeserverBack,
    MemberChange,
    MemberFound,
    MembersChanged,
    PowerChange,
    RecheckDue,
    RoomListed,
    RoomPolicyChange,
    RoomUpgraded,
)
from guardbot.core.policy import (
    AFTER_SHIELDING,
    Facts,
    Policy,
    PolicySource,
    RoomFacts,
    ServerPolicy,
    Verdict,
    close_and_sweep,
    confirm_forbid,
    confirm_sweep,
    decide,
    decide_bot_membership,
    decide_found,
    decide_guest_access,
    decide_invite,
    decide_member,
    decide_outside,
    decide_room_policy,
    decide_shields,
    decide_upgrade,
    explain_kick,
    judge_room_policy,
    kick_landed,
    refuse_choice,
    room_facts,
    why_not_removed,
    why_not_shielded,
)

BOT = "@guardbot:example.org"
ROOM = "!room:example.org"
GUEST = "@1234:example.org"
SERVER = ServerPolicy(kick_reason="no guests", restore_notice="closed again")
NOW = 1_000


def facts(policy: Policy = Policy.FORBID, listed: bool = True) -> RoomFacts:
    return RoomFacts(ROOM, listed, policy, kick_reason="no guests", restore_notice="closed again")


def change(membership: str = "join", event_id: str = "$join", user_id: str = GUEST):
    return MemberChange(ROOM, user_id, event_id, membership, None, kind_guest=True)


def gathered(room: RoomFacts | None = None, **kw: object) -> Facts:
    return Facts(now=NOW, bot_user_id=BOT, room=room, **kw)  # type: ignore[arg-type]


def actions_for(obs: object, room: RoomFacts | None, **kw: object) -> list:
    return list(decide(obs, gathered(room, **kw), SERVER).actions)  # type: ignore[arg-type]


# -- a guest's join or invite -----------------------------------------------------------------
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
    actions = actions_for(change(), facts(policy), verdict=verdict)
    assert not any(isinstance(a, Kick) for a in actions)
    found = MemberFound(ROOM, GUEST, "$e", "join", kind_guest=True)
    assert actions_for(found, facts(policy), verdict=verdict) == []


def test_member_change_that_is_not_join_or_invite_does_nothing() -> None:
    assert decide_member(change("leave"), facts(), Verdict.GUEST) == []


def test_every_queued_enforcement_has_its_decision_in_the_audit() -> None:
    decision = decide(change(), gathered(facts(), verdict=Verdict.GUEST), SERVER)
    assert [type(a) for a in decision.actions] == [ForbidGuestAccess, Kick]
    assert [(e.what, e.user_id, e.result) for e in decision.audit] == [
        ("decide ForbidGuestAccess", None, "queued"),
        ("decide Kick", GUEST, "queued"),
    ]
    assert all(e.at == NOW and "$join" in e.why for e in decision.audit)


# -- guest access -----------------------------------------------------------------------------
def test_opening_a_listed_forbid_room_is_undone_with_a_notice() -> None:
    obs = GuestAccessChange(ROOM, "$open", "@alice:example.org", "can_join")
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


# -- listing, the homeserver coming back, a room met before the poll ---------------------------
def test_listing_per_policy() -> None:
    listing = RoomListed(ROOM, 1000)
    forbid = actions_for(listing, facts(Policy.FORBID))
    assert [type(a) for a in forbid] == [ForbidGuestAccess, Sweep]
    assert {a.cause for a in forbid} == {"listed:1000"}
    assert actions_for(listing, facts(Policy.KICK)) == [Sweep(ROOM, cause="listed:1000")]
    assert actions_for(listing, facts(Policy.OFF)) == []
    assert actions_for(listing, facts(listed=False)) == []


def test_relisting_gets_new_action_keys() -> None:
    first = close_and_sweep(facts(), cause="listed:1000")
    again = close_and_sweep(facts(), cause="listed:1000")
    later = close_and_sweep(facts(), cause="listed:2000")
    assert [a.key for a in first] == [a.key for a in again]
    assert not {a.key for a in first} & {a.key for a in later}


def test_a_room_found_listed_by_a_lookup_is_recorded_and_swept_with_the_decision() -> None:
    """Met before the poller saw it: what the look-up learned is stored with the decision,
    and the guests already inside are handled as if the poller had listed it."""
    classified = RoomClassified(ROOM, True, 777)
    decision = decide(
        change(),
        gathered(facts(Policy.KICK), verdict=Verdict.GUEST, classified=classified),
        SERVER,
    )
    assert decision.records == (classified,)
    assert set(decision.actions) == {
        Sweep(ROOM, cause="listed:777"),
        Kick(ROOM, GUEST, "no guests", cause="$join"),
    }


def test_a_room_found_unlisted_is_only_recorded() -> None:
    classified = RoomClassified(ROOM, False, 777)
    decision = decide(change(), gathered(facts(listed=False), classified=classified), SERVER)
    assert decision.records == (classified,) and decision.actions == ()


def test_after_an_outage_every_enforced_listed_room_is_swept_once() -> None:
    rooms = (facts(Policy.KICK), replace(facts(Policy.OFF), room_id="!off:example.org"))
    actions = actions_for(HomeserverBack(42), None, listed_rooms=rooms)
    assert actions == [Sweep(ROOM, cause="homeserver back at 42")]


def test_power_change_wakes_the_rooms_actions() -> None:
    decision = decide(PowerChange(ROOM, "$pl"), gathered(facts()), SERVER)
    assert decision.records == (RoomWoken(ROOM),) and decision.actions == ()


# -- guardbot's own membership ----------------------------------------------------------------
@pytest.mark.parametrize("room", [facts(), facts(Policy.OFF), facts(listed=False), None])
def test_bot_accepts_every_invite(room: RoomFacts | None) -> None:
    invite = BotMembership(ROOM, "$inv", "invite")
    assert actions_for(invite, room) == [JoinRoom(ROOM, cause="$inv")]


def test_only_a_server_admin_invites_guardbot_into_the_management_room() -> None:
    invite = BotMembership(ROOM, "$inv", "invite", sender="@mallory:example.org")
    refused = decide(invite, gathered(None, management_room=ROOM), SERVER)
    assert refused.actions == ()
    assert [(e.what, e.actor) for e in refused.audit] == [("invite", "@mallory:example.org")]
    allowed = actions_for(invite, None, management_room=ROOM, inviter_is_admin=True)
    assert allowed == [JoinRoom(ROOM, cause="$inv")]


def test_bot_join_closes_and_sweeps_enforced_rooms_only() -> None:
    join = BotMembership(ROOM, "$botjoin", "join")
    assert actions_for(join, facts(Policy.FORBID)) == [
        ForbidGuestAccess(ROOM, cause="$botjoin"),
        Sweep(ROOM, cause="$botjoin"),
    ]
    assert actions_for(join, facts(Policy.KICK)) == [Sweep(ROOM, cause="$botjoin")]
    assert actions_for(join, facts(Policy.OFF)) == []
    assert actions_for(join, facts(listed=False)) == []
    assert decide(join, gathered(facts()), SERVER).records == (RoomWoken(ROOM),)
    assert actions_for(BotMembership(ROOM, "$left", "leave"), facts()) == []


def test_bot_rejoin_closes_the_room_again() -> None:
    """Each of guardbot's joins is its own cause: a queue that deduplicates on keys forever
    must not swallow the second join's ForbidGuestAccess."""
    first = actions_for(BotMembership(ROOM, "$join1", "join"), facts())
    second = actions_for(BotMembership(ROOM, "$join2", "join"), facts())
    assert [type(a) for a in second] == [ForbidGuestAccess, Sweep]
    assert not {a.key for a in first} & {a.key for a in second}


# -- members found by a sweep -----------------------------------------------------------------
@pytest.mark.parametrize("membership", ["join", "invite"])
def test_sweep_kicks_joined_and_invited_guests(membership: str) -> None:
    found = MemberFound(ROOM, GUEST, "$m", membership, kind_guest=False)
    actions = actions_for(found, facts(Policy.KICK), verdict=Verdict.GUEST)
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
    found = MemberFound(ROOM, GUEST, "$m", membership, kind_guest=True)
    assert actions_for(found, room, verdict=Verdict.GUEST) == []


def test_sweep_finds_the_same_kick_as_the_join() -> None:
    """A guest whose join was already acted on is not kicked a second time by a sweep."""
    (kick,) = [
        a
        for a in actions_for(change(event_id="$j"), facts(), verdict=Verdict.GUEST)
        if isinstance(a, Kick)
    ]
    found = MemberFound(ROOM, GUEST, "$j", "join", kind_guest=True)
    (swept,) = actions_for(found, facts(), verdict=Verdict.GUEST)
    assert swept.key == kick.key


# -- the re-checks right before acting, and explain -------------------------------------------
@pytest.mark.parametrize("policy", [Policy.FORBID, Policy.KICK])
@pytest.mark.parametrize("membership", ["join", "invite"])
def test_confirm_kick_stands(policy: Policy, membership: str) -> None:
    assert why_not_removed(facts(policy), membership, Verdict.GUEST) is None


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
    reason = why_not_removed(room, membership, verdict)
    assert reason is not None and why in reason


def test_forbid_and_sweep_stand_only_where_they_apply() -> None:
    assert confirm_forbid(facts(Policy.FORBID)) is None
    assert confirm_forbid(facts(Policy.KICK)) is not None
    assert confirm_forbid(facts(listed=False)) is not None
    assert confirm_sweep(facts(Policy.KICK)) is None
    assert confirm_sweep(facts(Policy.OFF)) is not None


BOT = "@guardbot:example.org"


def left(sender: str = BOT, reason: str = "guests are not allowed", ts: int = 100_000) -> dict:
    content = {"membership": "leave", "reason": reason}
    return {"sender": sender, "content": content, "origin_server_ts": ts}


def test_a_kick_that_landed_before_a_crash_is_recognised() -> None:
    landed = partial(kick_landed, bot=BOT, why="guests are not allowed", started_at=100_000)
    assert landed(left())
    assert landed(left(ts=100_000 - 59_000))  # the homeserver's clock may lag a little
    assert not landed(left(ts=100_000 - 61_000))  # an older kick: not this try's
    assert not landed(left(reason="spam"))  # another action's kick
    assert not landed(left(sender="@mod:example.org"))  # a moderator's
    assert not landed({**left(), "content": {"membership": "join"}})
    assert not landed(None)


def test_a_member_event_is_re_sent_only_for_a_proven_former_guest() -> None:
    says_guest = {"membership": "join", "kind": "guest"}
    assert why_not_shielded(says_guest, Verdict.NOT_GUEST) is None
    assert why_not_shielded(says_guest, Verdict.GUEST) is not None
    assert why_not_shielded(says_guest, Verdict.UNKNOWN) is not None
    assert why_not_shielded({"membership": "join"}, Verdict.NOT_GUEST) is not None
    assert why_not_shielded({**says_guest, "membership": "leave"}, Verdict.NOT_GUEST) is not None
    assert why_not_shielded(None, Verdict.NOT_GUEST) is not None


def test_explain_gives_the_first_reason_in_the_executors_order() -> None:
    assert explain_kick(facts(), "join", Verdict.GUEST, []) is None
    dry = replace(facts(), dry_run=True)
    assert explain_kick(dry, "join", Verdict.GUEST, []) == "dry-run is on for this room"
    assert "power to kick" in str(explain_kick(facts(), "join", Verdict.GUEST, ["power to kick"]))
    assert "not certainly a guest" in str(explain_kick(dry, "join", Verdict.UNKNOWN, []))


# -- where a room's policy comes from ---------------------------------------------------------
def setting(policy: str = "kick") -> RoomPolicySetting:
    return RoomPolicySetting(ROOM, policy, "our reason", "@alice:example.org", "$p", 1)


def test_policy_comes_from_the_server_room_setting_then_room_admins_then_default() -> None:
    server = ServerPolicy(default=Policy.FORBID, rooms={ROOM: Policy.OFF}, kick_reason="k")
    overridden = room_facts(server, ROOM, True, setting(), {})
    assert (overridden.policy, overridden.source) == (Policy.OFF, PolicySource.SERVER_ROOM)
    chosen = room_facts(ServerPolicy(kick_reason="k"), ROOM, True, setting(), {})
    assert (chosen.policy, chosen.source, chosen.kick_reason) == (
        Policy.KICK,
        PolicySource.ROOM_ADMINS,
        "our reason",
    )
    assert "@alice:example.org" in chosen.source_text
    default = room_facts(ServerPolicy(kick_reason="k"), ROOM, True, None, {})
    assert (default.policy, default.source, default.kick_reason) == (
        Policy.FORBID,
        PolicySource.SERVER_DEFAULT,
        "k",
    )


def test_dry_run_comes_from_the_room_then_everywhere_then_config() -> None:
    server = ServerPolicy(dry_run=True)
    assert room_facts(server, ROOM, True, None, {}).dry_run
    assert not room_facts(server, ROOM, True, None, {GLOBAL: False}).dry_run
    assert room_facts(server, ROOM, True, None, {GLOBAL: False, ROOM: True}).dry_run


def test_room_admins_choose_only_what_the_server_admin_allows() -> None:
    assert refuse_choice("kick", ("kick", "forbid")) is None
    assert "does not let rooms choose 'off'" in str(refuse_choice("off", ("kick", "forbid")))
    assert "must be one of" in str(refuse_choice("ban", ("kick",)))


def policy_event(content: dict, sender: str = "@alice:example.org") -> RoomPolicyChange:
    return RoomPolicyChange(ROOM, "$pol", sender, content)


def test_an_accepted_policy_is_recorded_answered_and_applied() -> None:
    room = facts(Policy.FORBID)
    obs = policy_event({"listed_rooms": "kick", "reason": " be nice "})
    decision = decide(obs, gathered(room, sender_may_set_policy=True), SERVER)
    (record,) = decision.records
    assert record == RoomPolicySetting(ROOM, "kick", "be nice", "@alice:example.org", "$pol", NOW)
    notice, sweep = decision.actions
    assert isinstance(notice, Notice) and "policy is now kick" in notice.text
    assert sweep == Sweep(ROOM, cause="$pol")
    assert [e.result for e in decision.audit if e.what == "policy"] == ["accepted"]


def test_a_refused_policy_is_answered_and_audited_not_recorded() -> None:
    obs = policy_event({"listed_rooms": "kick"})
    decision = decide(obs, gathered(facts(), sender_may_set_policy=False), SERVER)
    assert decision.records == ()
    (notice,) = decision.actions
    assert isinstance(notice, Notice) and "may not set" in notice.text
    (entry,) = decision.audit
    assert isinstance(entry, AuditRecord) and entry.result == "refused"


def test_the_server_admins_setting_still_applies_and_the_notice_says_so() -> None:
    server = replace(SERVER, rooms={ROOM: Policy.OFF})
    room = room_facts(server, ROOM, True, None, {})
    decision = decide(
        policy_event({"listed_rooms": "kick"}), gathered(room, sender_may_set_policy=True), server
    )
    (notice,) = decision.actions  # no sweep: the server's `off` wins
    assert isinstance(notice, Notice) and "still applies" in notice.text


def test_a_command_written_by_guardbot_names_the_commanding_user() -> None:
    ruling = judge_room_policy(
        policy_event({"listed_rooms": "kick", "set_by": "@bob:example.org"}, sender=BOT),
        sender_may=False,
        allowed=("kick",),
        bot_user_id=BOT,
    )
    assert (ruling.policy, ruling.set_by) == (Policy.KICK, "@bob:example.org")


# -- action keys ------------------------------------------------------------------------------
def _decisions(event_id: str) -> list:
    return [
        *actions_for(change(event_id=event_id), facts(), verdict=Verdict.GUEST),
        *actions_for(BotMembership(ROOM, event_id, "invite"), facts()),
        *actions_for(BotMembership(ROOM, event_id, "join"), facts(Policy.KICK)),
        *actions_for(GuestAccessChange(ROOM, event_id, "@a:x", "can_join"), facts()),
    ]


def test_same_cause_gives_same_keys_and_other_causes_other_keys() -> None:
    first = [a.key for a in _decisions("$e1")]
    assert len(first) == 5
    assert first == [a.key for a in _decisions("$e1")]
    assert not set(first) & {a.key for a in _decisions("$e2")}


def test_key_depends_on_room_and_user() -> None:
    kick = Kick(ROOM, GUEST, "r", cause="$e")
    assert kick.key != Kick("!other:example.org", GUEST, "r", cause="$e").key
    assert kick.key != Kick(ROOM, "@999:example.org", "r", cause="$e").key
    assert kick.key == Kick(ROOM, GUEST, "a different reason", cause="$e").key
    forbid = ForbidGuestAccess(ROOM, cause="$e")
    assert forbid.key == ForbidGuestAccess(ROOM, cause="$e", notice="hello").key
    kinds = {Kick(ROOM, GUEST, "r", "$e").key, forbid.key, Sweep(ROOM, "$e").key}
    assert len(kinds | {JoinRoom(ROOM, "$e").key}) == 4


def test_a_member_count_that_moved_re_checks_the_room() -> None:
    moved = MembersChanged(ROOM, 12, polled_at=99)
    assert actions_for(moved, facts(Policy.KICK)) == [Sweep(ROOM, cause="members:99")]
    forbid = actions_for(moved, facts(Policy.FORBID))
    assert [type(a) for a in forbid] == [ForbidGuestAccess, Sweep]  # closed again, if opened
    assert actions_for(moved, facts(Policy.OFF)) == []
    assert actions_for(moved, facts(listed=False)) == []


def test_the_slow_recheck_sweeps_every_enforced_listed_room() -> None:
    rooms = (facts(Policy.KICK), replace(facts(Policy.OFF), room_id="!off:example.org"))
    assert actions_for(RecheckDue(7), None, listed_rooms=rooms) == [
        Sweep(ROOM, cause="recheck at 7")
    ]


def test_an_upgraded_room_is_followed_with_its_policy() -> None:
    upgrade = RoomUpgraded(ROOM, "$tomb", "@alice:example.org", "!new:example.org")
    assert actions_for(upgrade, facts()) == [JoinRoom("!new:example.org", cause="$tomb")]
    chosen = RoomPolicySetting(ROOM, "kick", None, "@alice:example.org", "$p", 1)
    decision = decide(upgrade, gathered(facts(), predecessor_policy=chosen), SERVER)
    assert [type(a) for a in decision.actions] == [JoinRoom, SetRoomPolicy]
    # Recorded now: nothing in the new room runs under the server default meanwhile.
    (record,) = decision.records
    assert (record.room_id, record.policy, record.set_by) == (
        "!new:example.org",
        "kick",
        "@alice:example.org",
    )


def test_joining_a_room_applies_the_policy_in_its_state_first() -> None:
    """A room made with its policy in the initial state: the server default (forbid here)
    must not be applied before it."""
    own = policy_event({"listed_rooms": "kick"})
    join = BotMembership(ROOM, "$botjoin", "join")
    decision = decide(
        join, gathered(facts(Policy.FORBID), policy_event=own, sender_may_set_policy=True), SERVER
    )
    assert [r.policy for r in decision.records if isinstance(r, RoomPolicySetting)] == ["kick"]
    assert [type(a) for a in decision.actions] == [Notice, Sweep]  # no ForbidGuestAccess


def test_an_upgraded_room_without_a_policy_takes_its_predecessors() -> None:
    before = RoomPolicySetting("!old:example.org", "kick", "be kind", "@alice:example.org", "$p", 1)
    join = BotMembership(ROOM, "$botjoin", "join")
    decision = decide(join, gathered(facts(Policy.FORBID), predecessor_policy=before), SERVER)
    write, sweep = decision.actions
    assert write == SetRoomPolicy(
        ROOM,
        {"listed_rooms": "kick", "set_by": "@alice:example.org", "reason": "be kind"},
        cause="upgrade from !old:example.org",
    )
    assert sweep == Sweep(ROOM, cause="$botjoin")  # kick now: no ForbidGuestAccess first


# -- each rule on its own -----------------------------------------------------------------------
def test_decide_found_kicks_only_a_guest_the_room_removes() -> None:
    found = MemberFound(ROOM, GUEST, "$m", "join", kind_guest=True)
    assert decide_found(found, facts(Policy.FORBID), Verdict.GUEST) == [
        Kick(ROOM, GUEST, "no guests", cause="$m")  # no forbid: the sweep's room is closed
    ]
    assert decide_found(found, facts(Policy.OFF), Verdict.GUEST) == []
    assert decide_found(found, facts(), Verdict.UNKNOWN) == []


def test_decide_invite_joins_unless_it_is_the_management_room_from_a_non_admin() -> None:
    invite = BotMembership(ROOM, "$inv", "invite", sender="@mallory:example.org")
    assert decide_invite(invite, gathered()).actions == (JoinRoom(ROOM, cause="$inv"),)
    refused = decide_invite(invite, gathered(management_room=ROOM))
    assert refused.actions == () and refused.audit[0].result.startswith("refused")
    admitted = decide_invite(invite, gathered(management_room=ROOM, inviter_is_admin=True))
    assert admitted.actions == (JoinRoom(ROOM, cause="$inv"),)


def test_decide_bot_membership_wakes_the_room_then_applies_its_policy() -> None:
    join = BotMembership(ROOM, "$in", "join")
    decision = decide_bot_membership(join, gathered(), facts(Policy.KICK), SERVER)
    assert decision.records == (RoomWoken(ROOM),)
    assert decision.actions == (Sweep(ROOM, cause="$in"),)
    left = BotMembership(ROOM, "$out", "leave")
    assert decide_bot_membership(left, gathered(), facts(), SERVER) == NOTHING


def test_decide_upgrade_follows_the_room_and_carries_its_policy_over() -> None:
    upgrade = RoomUpgraded(ROOM, "$tomb", "@alice:example.org", "!new:example.org")
    assert decide_upgrade(upgrade, gathered()).actions == (
        JoinRoom("!new:example.org", cause="$tomb"),
    )
    chosen = RoomPolicySetting(ROOM, "off", "ours", "@alice:example.org", "$p", 1)
    decision = decide_upgrade(upgrade, gathered(predecessor_policy=chosen))
    join, write = decision.actions
    assert isinstance(write, SetRoomPolicy) and write.room_id == "!new:example.org"
    assert write.content == {
        "listed_rooms": "off",
        "set_by": "@alice:example.org",
        "reason": "ours",
    }


def test_decide_room_policy_sweeps_only_when_the_change_stands() -> None:
    room = facts(Policy.OFF)
    change = policy_event({"listed_rooms": "kick"})
    accepted = decide_room_policy(change, gathered(room, sender_may_set_policy=True), room, SERVER)
    assert [type(a) for a in accepted.actions] == [Notice, Sweep]
    refused = decide_room_policy(change, gathered(room), room, SERVER)
    assert [type(a) for a in refused.actions] == [Notice] and refused.records == ()


def test_decide_shields_each_former_guest_before_the_room_is_closed() -> None:
    found = FormerGuestsFound(ROOM, ("@5:example.org", "@6:example.org"), "$j", "closed", 9)
    decision = decide_shields(found, facts(Policy.FORBID))
    assert decision.actions == (
        ShieldFormerGuest(ROOM, "@5:example.org", cause="$j"),
        ShieldFormerGuest(ROOM, "@6:example.org", cause="$j"),
        ForbidGuestAccess(ROOM, cause=AFTER_SHIELDING + "$j", notice="closed"),
    )
    assert decide_shields(found, facts(Policy.OFF)) == NOTHING


def test_decide_outside_joins_once_a_minute_only_with_auto_join_and_admin_rights() -> None:
    auto = replace(SERVER, auto_join=True)
    outside = GuardbotOutside(ROOM, at=125_000)
    assert decide_outside(outside, facts(), True, auto).actions == (
        JoinRoom(ROOM, cause="outside at 120000"),
    )
    later = GuardbotOutside(ROOM, at=179_999)  # the same minute: the same join
    assert decide_outside(later, facts(), True, auto) == decide_outside(
        outside, facts(), True, auto
    )
    assert decide_outside(outside, facts(), False, auto) == NOTHING  # no admin rights
    assert decide_outside(outside, facts(), True, SERVER) == NOTHING  # not asked to
    assert decide_outside(outside, facts(Policy.OFF), True, auto) == NOTHING
