"""The guest oracle (guard/guests.py) and its cache: final "not a guest" answers as bits, expiring
"guest" answers, and the one-second window in which a "guest" answer still counts as fresh before a
kick."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from guardbot.core.policy import Verdict
from guardbot.guard import guests
from guardbot.guard.guests import FRESH_FOR, GUEST_TTL, GuestOracle, VerdictCache
from guardbot.matrix.client import Homeserver
from tests.support.clock import FakeClock
from tests.support.fake_homeserver import FakeHomeserver, error

D = "example.org"
BIG = guests.BITMAP_LIMIT + 5  # numeric, but past the bitmap


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def test_not_a_guest_is_final_and_takes_a_bit() -> None:
    cache = VerdictCache(D, max_entries=10, clock=FakeClock())
    for n in range(1, 100_001):
        cache.put(f"@{n}:{D}", False)
    assert len(cache) == 100_000  # the bitmap is not bound by max_entries: it is tiny
    assert cache.get(f"@1:{D}") is False and cache.get(f"@100000:{D}") is False
    assert cache.get(f"@100001:{D}") is None
    assert len(cache._bits) <= 100_001 // 8 + 1


def test_other_spellings_and_servers_never_share_a_bit() -> None:
    cache = VerdictCache(D, max_entries=10, clock=FakeClock())
    cache.put(f"@7:{D}", False)
    assert cache.get(f"@07:{D}") is None
    assert cache.get("@7:other.example") is None
    assert cache.get(f"@7:{D}.evil") is None
    for odd in (f"@07:{D}", f"@{'9' * 12}:{D}", f"@{BIG}:{D}", f"@user:{D}", "@7:other.example"):
        cache.put(odd, False)
        assert cache.get(odd) is False
    assert len(cache._bits) == 1


def test_other_ids_and_guests_are_bounded_oldest_first(clock: FakeClock) -> None:
    cache = VerdictCache(D, max_entries=3, clock=clock)
    for n in range(5):
        cache.put(f"@0{n}:{D}", False)
        cache.put(f"@{n + 1}:{D}", True)
    assert [cache.get(f"@0{n}:{D}") for n in range(5)] == [None, None, False, False, False]
    assert [cache.get(f"@{n + 1}:{D}") for n in range(5)] == [None, None, True, True, True]


def test_guest_answers_expire_and_count_as_fresh_only_briefly(clock: FakeClock) -> None:
    cache = VerdictCache(D, max_entries=10, clock=clock)
    cache.put(f"@5:{D}", True)
    assert cache.get(f"@5:{D}") is True
    assert cache.get(f"@5:{D}", fresh=True) is True
    clock.advance(FRESH_FOR)
    assert cache.get(f"@5:{D}", fresh=True) is None  # too old to skip the check before a kick
    assert cache.get(f"@5:{D}") is True
    clock.advance(GUEST_TTL)
    assert cache.get(f"@5:{D}") is None and len(cache) == 0


def test_answers_replace_each_other_and_can_be_dropped(clock: FakeClock) -> None:
    cache = VerdictCache(D, max_entries=10, clock=clock)
    cache.put(f"@5:{D}", False)
    cache.put(f"@5:{D}", True)  # only after an invalidation in practice, but never both
    assert cache.get(f"@5:{D}") is True and len(cache) == 1
    cache.put(f"@5:{D}", False)
    assert cache.get(f"@5:{D}") is False and len(cache) == 1
    assert cache.get(f"@5:{D}", fresh=True) is None  # fresh asks again unless a young "guest"
    cache.discard(f"@5:{D}")
    assert cache.get(f"@5:{D}") is None and len(cache) == 0
    cache.discard(f"@5:{D}")
    assert len(cache) == 0


@pytest.fixture
async def oracle(fake_hs: FakeHomeserver, clock: FakeClock) -> AsyncIterator[GuestOracle]:
    """The guest oracle, asking the scripted homeserver's admin API (where @1 is a guest)."""
    fake_hs.user(f"@1:{D}", guest=True)
    fake_hs.user(f"@2:{D}", guest=False)
    hs = Homeserver(fake_hs.url, "as-token", fake_hs.bot_user_id)
    oracle = GuestOracle(hs, D, set(), clock)
    oracle.set_admin(True)
    yield oracle
    await hs.close()


def asked(hs: FakeHomeserver) -> list[str]:
    return [c.params["user"] for c in hs.called("admin_user")]


async def test_oracle_asks_once_and_again_before_a_kick_unless_just_asked(
    fake_hs: FakeHomeserver, oracle: GuestOracle, clock: FakeClock
) -> None:
    guest, former = f"@1:{D}", f"@2:{D}"

    async def verdict(user_id: str, fresh: bool = False) -> Verdict:
        return await oracle.verdict(user_id, kind_guest=True, new_join=True, fresh=fresh)

    assert await verdict(guest) is Verdict.GUEST
    assert await verdict(guest, fresh=True) is Verdict.GUEST  # the decision's answer, 0 s old
    assert asked(fake_hs) == [guest]
    clock.advance(FRESH_FOR)
    assert await verdict(guest, fresh=True) is Verdict.GUEST
    assert asked(fake_hs) == [guest, guest]
    fake_hs.users[guest]["is_guest"] = False  # upgraded
    clock.advance(FRESH_FOR)
    assert await verdict(guest) is Verdict.GUEST  # cached, not yet expired
    assert await verdict(guest, fresh=True) is Verdict.NOT_GUEST
    assert await verdict(former) is Verdict.NOT_GUEST
    assert await verdict(former) is Verdict.NOT_GUEST
    assert asked(fake_hs) == [guest, guest, guest, former]
    oracle.invalidate(former)
    assert await verdict(former) is Verdict.NOT_GUEST
    assert asked(fake_hs)[-1] == former and len(asked(fake_hs)) == 5


async def test_admin_rights_taken_away_fall_back_to_the_hint(
    fake_hs: FakeHomeserver, oracle: GuestOracle
) -> None:
    fake_hs.always("admin_user", error(403, "M_FORBIDDEN", "You are not a server admin"))
    assert await oracle.verdict(f"@1:{D}", kind_guest=True, new_join=True) is Verdict.GUEST
    assert oracle.admin is False  # noticed, not asked again and again
    assert await oracle.verdict(f"@2:{D}", kind_guest=False, new_join=False) is Verdict.UNKNOWN
    assert len(fake_hs.called("admin_user")) == 1
