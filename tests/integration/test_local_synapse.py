"""Starts a real Synapse and checks the LocalSynapse helper end to end."""

from __future__ import annotations

import os
import pathlib
import time
from urllib.parse import quote

import aiohttp
import pytest

from devtools.local_synapse import LocalSynapse


@pytest.mark.asyncio
async def test_local_synapse_admin_and_guest(tmp_path: pathlib.Path) -> None:
    hs = LocalSynapse(tmp_path / "hs")
    t0 = time.monotonic()
    await hs.start()
    print(f"synapse start-up: {time.monotonic() - t0:.2f}s")
    pid = hs.pid
    assert pid is not None and hs.running
    try:
        admin_id, admin_token = await hs.register_user("admin", "pw-admin", admin=True)
        assert admin_id == f"@admin:{hs.server_name}"

        guest_id, _guest_token = await hs.register_guest()
        localpart, _, server = guest_id[1:].partition(":")
        assert localpart.isdigit() and server == hs.server_name

        url = f"{hs.base_url}/_synapse/admin/v2/users/{quote(guest_id, safe='')}"
        headers = {"Authorization": f"Bearer {admin_token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.get(url, headers=headers) as resp,
        ):
            assert resp.status == 200
            assert (await resp.json())["is_guest"] is True
    finally:
        await hs.stop()

    assert not hs.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    await hs.stop()  # second stop is a no-op
