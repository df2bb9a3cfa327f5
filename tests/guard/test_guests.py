"""The guest oracle's cache: final "not a guest" answers as bits, expiring "guest" answers, and
the one-second window in which a "guest" answer still counts as fresh before a kick."""

from __future__ import annotations

from typing import Any

import pytest

from guardbot.core.policy import Verdict
from guardbot.guard import guests
from guardbot.guard.guests import FRESH_FOR, GUEST_TTL, GuestOracle, VerdictCache
from guardbot.matrix.client import HomeserverError
from tests.support.clock import FakeClock

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


class FakeHomeserver:
    bot_user_id = f"@guardbot:{D}"

    def __init__(self) -> None:
        self.asked: list[str] = []
        self.guests = {f"@1:{D}"}

    async def admin_user(self, user_id: str) -> dict[str, Any]:
        self.asked.append(user_id)
        return {"is_guest": user_id in self.guests}


async def test_oracle_asks_once_and_again_before_a_kick_unless_just_asked(clock: FakeClock) -> None:
    hs = FakeHomeserver()
    oracle = GuestOracle(hs, D, set(), clock)  # type: ignore[arg-type]
    oracle.set_admin(True)
    guest, former = f"@1:{D}", f"@2:{D}"

    async def verdict(user_id: str, fresh: bool = False) -> Verdict:
        return await oracle.verdict(user_id, kind_guest=True, new_join=True, fresh=fresh)

    assert await verdict(guest) is Verdict.GUEST
    assert await verdict(guest, fresh=True) is Verdict.GUEST  # the decision's answer, 0 s old
    assert hs.asked == [guest]
    clock.advance(FRESH_FOR)
    assert await verdict(guest, fresh=True) is Verdict.GUEST
    assert hs.asked == [guest, guest]
    hs.guests.clear()  # upgraded
    clock.advance(FRESH_FOR)
    assert await verdict(guest) is Verdict.GUEST  # cached, not yet expired
    assert await verdict(guest, fresh=True) is Verdict.NOT_GUEST
    assert await verdict(former) is Verdict.NOT_GUEST
    assert await verdict(former) is Verdict.NOT_GUEST
    assert hs.asked == [guest, guest, guest, former]
    oracle.invalidate(former)
    assert await verdict(former) is Verdict.NOT_GUEST
    assert hs.asked[-1] == former and len(hs.asked) == 5


async def test_admin_rights_taken_away_fall_back_to_the_hint(clock: FakeClock) -> None:
    class Refusing(FakeHomeserver):
        async def admin_user(self, user_id: str) -> dict[str, Any]:
            raise HomeserverError(403, "M_FORBIDDEN", "You are not a server admin", {})

    oracle = GuestOracle(Refusing(), D, set(), clock)  # type: ignore[arg-type]
    oracle.set_admin(True)
    assert await oracle.verdict(f"@1:{D}", kind_guest=True, new_join=True) is Verdict.GUEST
    assert oracle.admin is False  # noticed, not asked again and again
    assert await oracle.verdict(f"@2:{D}", kind_guest=False, new_join=False) is Verdict.UNKNOWN
