"""policy.named_guests: link_only: a local member with a name may be a named guest, so their
member events are no longer dropped at triage (core/observations.py)."""

from __future__ import annotations

from guardbot.core.observations import MemberChange, is_guest_candidate, triage

DOMAIN = "example.org"
BOT = "@guardbot:example.org"


def join(user_id: str) -> dict:
    return {
        "type": "m.room.member",
        "room_id": "!room",
        "event_id": "$join",
        "sender": user_id,
        "state_key": user_id,
        "content": {"membership": "join"},
    }


def test_a_named_member_is_a_candidate_only_under_link_only() -> None:
    assert not is_guest_candidate("@alice:example.org", DOMAIN, False)
    assert is_guest_candidate("@alice:example.org", DOMAIN, False, named_guests_too=True)
    # Another server's user still needs their server's own kind: guest.
    assert not is_guest_candidate("@alice:elsewhere.org", DOMAIN, False, named_guests_too=True)
    assert is_guest_candidate("@1234:example.org", DOMAIN, False)


def test_triage_keeps_a_named_members_join_only_under_link_only() -> None:
    assert triage(join("@alice:example.org"), DOMAIN, BOT) is None
    kept = triage(join("@alice:example.org"), DOMAIN, BOT, named_guests_too=True)
    assert isinstance(kept, MemberChange) and kept.user_id == "@alice:example.org"
