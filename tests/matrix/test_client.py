"""The homeserver client (guardbot/matrix/client.py). Tokens from clients that no one could
have issued, found by the fault suite's fuzzing of /_guardbot/v1 and the claim page.

A user's token that no homeserver could have issued (non-ASCII, control characters) is
refused as unknown without asking the homeserver: Synapse answers such a header with a 500,
which guardbot passed through, and a CR/LF in a guest_access_token made aiohttp raise (a 500
too)."""

from __future__ import annotations

from typing import Any

import pytest

from guardbot.matrix.client import Homeserver, HomeserverError


class RecordingHomeserver(Homeserver):
    """The real client, with its requests recorded instead of sent."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:1", "as-token", "@guardbot:example.org")
        self.calls: list[str] = []

    async def request(self, method: str, path: str, *args: Any, **kw: Any) -> dict[str, Any]:
        self.calls.append(path)
        return {"user_id": "@someone:example.org"}


@pytest.mark.parametrize("token", ["é", "tok\udcff", "a\r\nX-Injected: 1", "\x00", "\x7f"])
async def test_impossible_tokens_are_unknown_without_a_request(token: str) -> None:
    hs = RecordingHomeserver()
    with pytest.raises(HomeserverError) as refused:
        await hs.whoami(token)
    assert (refused.value.status, refused.value.errcode) == (401, "M_UNKNOWN_TOKEN")
    assert hs.calls == []


async def test_an_ordinary_token_is_asked_about() -> None:
    hs = RecordingHomeserver()
    assert await hs.whoami("syt_abc_DEF-123") == {"user_id": "@someone:example.org"}
    assert len(hs.calls) == 1
