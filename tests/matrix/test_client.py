"""The homeserver client (guardbot/matrix/client.py) against the scripted homeserver: what guardbot
makes of its answers (absent is None, a refusal an error that says whether to try again), and tokens
from clients that no one could have issued, found by the fault suite's fuzzing of /_guardbot/v1 and
the claim page.

A user's token that no homeserver could have issued (non-ASCII, control characters) is refused as
unknown without asking the homeserver: Synapse answers such a header with a 500, which guardbot
passed through, and a CR/LF in a guest_access_token made aiohttp raise (a 500 too)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from guardbot.matrix.client import Homeserver, HomeserverError
from tests.support.fake_homeserver import DROP, Answer, FakeHomeserver, error

BOT = "@guardbot:example.org"


@pytest.fixture
async def client(fake_hs: FakeHomeserver) -> AsyncIterator[Homeserver]:
    hs = Homeserver(fake_hs.url, "as-token", BOT)
    yield hs
    await hs.close()


@pytest.mark.parametrize("token", ["é", "tok\udcff", "a\r\nX-Injected: 1", "\x00", "\x7f"])
async def test_impossible_tokens_are_unknown_without_a_request(
    fake_hs: FakeHomeserver, client: Homeserver, token: str
) -> None:
    with pytest.raises(HomeserverError) as refused:
        await client.whoami(token)
    assert (refused.value.status, refused.value.errcode) == (401, "M_UNKNOWN_TOKEN")
    assert fake_hs.called() == []


async def test_an_ordinary_token_is_asked_about(
    fake_hs: FakeHomeserver, client: Homeserver
) -> None:
    fake_hs.tokens["syt_abc_DEF-123"] = "@someone:example.org"
    assert (await client.whoami("syt_abc_DEF-123"))["user_id"] == "@someone:example.org"
    (asked,) = fake_hs.called("whoami")
    assert asked.token == "syt_abc_DEF-123"  # the user's own, not guardbot's


async def test_what_is_not_there_is_none_not_an_error(
    fake_hs: FakeHomeserver, client: Homeserver
) -> None:
    fake_hs.room("!r:example.org")
    assert await client.admin_user("@nobody:example.org") is None
    assert await client.state_event("!r:example.org", "m.room.guest_access") is None
    assert await client.directory_visibility("!r:example.org") == "private"
    assert await client.displayname("@nobody:example.org") is None
    assert await client.user_exists("@nobody:example.org") is False
    fake_hs.user("@alice:example.org", displayname="Alice")
    assert await client.displayname("@alice:example.org") == "Alice"
    assert await client.user_exists("@alice:example.org") is True
    # A room guardbot is not in is a refusal, not an absence.
    with pytest.raises(HomeserverError) as refused:
        await client.state_event("!elsewhere:example.org", "m.room.guest_access")
    assert refused.value.not_in_room and not refused.value.transient


async def test_a_failing_or_unreachable_homeserver_is_worth_another_try(
    fake_hs: FakeHomeserver,
) -> None:
    back: list[bool] = []
    client = Homeserver(fake_hs.url, "as-token", BOT, on_back=lambda: back.append(True))
    fake_hs.room("!r:example.org")
    try:
        fake_hs.script("kick", Answer(503), DROP)
        for _ in range(2):
            with pytest.raises(HomeserverError) as failed:
                await client.kick("!r:example.org", "@1:example.org", "no")
            assert failed.value.transient
            assert client.unreachable
        assert back == []
        await client.kick("!r:example.org", "@1:example.org", "no")  # it answers again
        assert not client.unreachable and back == [True]
        # A refusal is the homeserver's final word on that request.
        fake_hs.script("kick", error(403, "M_FORBIDDEN", "no power"))
        with pytest.raises(HomeserverError) as refused:
            await client.kick("!r:example.org", "@1:example.org", "no")
        assert not refused.value.transient and refused.value.error == "no power"
    finally:
        await client.close()


async def test_a_429_says_how_long_to_wait(fake_hs: FakeHomeserver, client: Homeserver) -> None:
    fake_hs.script("join", error(429, "M_LIMIT_EXCEEDED", retry_after_ms=1234))
    with pytest.raises(HomeserverError) as limited:
        await client.join("!r:example.org")
    assert limited.value.retry_after_ms == 1234


async def test_a_process_that_may_not_write_sends_nothing(fake_hs: FakeHomeserver) -> None:
    """A leader unsure of its lease (guardbot/leader.py) must not kick, send or set anything:
    the write waits, as in an outage; reads still go."""
    client = Homeserver(fake_hs.url, "as-token", BOT, may_write=lambda: False)
    try:
        with pytest.raises(HomeserverError) as held:
            await client.kick("!r:example.org", "@1:example.org", "no")
        assert held.value.transient
        assert await client.versions() == {"versions": ["v1.11"]}
        assert [c.route for c in fake_hs.called()] == ["versions"]
    finally:
        await client.close()
