"""Every guest account has an end (expiry.*), against a real Synapse of its own (expiry runs
over every account of the server, so not the session's shared one): an idle guest deactivated;
an idle named guest suspended, and the suspension lifted when they set a password; another
suspended, then deactivated and erased; accounts with a password and admins never touched."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from tests.support.homeserver import (
    GuardbotProcess,
    Homeserver,
    guardbot_starter,
    running_homeserver,
)
from tests.support.matrix_client import q, wait_for
from tests.support.pwlu_client import Api, as_user, pwlu_env, query_db, unique

pytestmark = pytest.mark.integration

EXTRA = {"enable_registration": True, "enable_registration_without_verification": True}


def expiry_env(hs: Homeserver, **overrides: object) -> dict[str, object]:
    return pwlu_env(
        hs,
        PWLU__NAG__FIRST_AFTER="1h",  # reminders are another test's business
        EXPIRY__ENABLED="true",
        EXPIRY__GUESTS_IDLE="3s",
        EXPIRY__NAMED_GUESTS_IDLE="3s",
        EXPIRY__CHECK_EVERY="1s",
        **overrides,
    )


def steps(proc: GuardbotProcess, user_id: str) -> list[tuple[str, str]]:
    """The account steps guardbot carried out for this user, in order."""
    sql = "SELECT kind, state FROM action WHERE user_id = ? AND kind IN (?, ?, ?) ORDER BY id"
    return [tuple(r) for r in query_db(proc, sql, user_id, "Suspend", "Unsuspend", "Deactivate")]


async def account(hs: Homeserver, user_id: str) -> dict[str, Any]:
    return await hs.admin.request("GET", f"/_synapse/admin/v2/users/{q(user_id)}")


async def test_idle_guests_end_and_named_guests_are_suspended_then_lifted(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "hs").mkdir()
    (tmp_path / "bot").mkdir()
    async with running_homeserver(tmp_path / "hs", EXTRA) as hs:
        guest = await hs.guest()
        owner = await hs.user(unique("owner"))  # a password of their own: never touched
        async with guardbot_starter(hs, tmp_path / "bot") as start:
            proc = await start(**expiry_env(hs, EXPIRY__SUSPENDED_FOR="1h"))
            api = Api(proc.url)
            named = await api.register_pwlu(unique("named"))
            user_id = named["user_id"]

            async def deactivated() -> bool:
                return bool((await account(hs, guest.user_id))["deactivated"])

            await wait_for(deactivated, timeout=60, what="the idle guest deactivated")

            async def suspended() -> bool:
                return bool((await account(hs, user_id))["suspended"])

            await wait_for(suspended, timeout=60, what="the idle named guest suspended")
            assert not (await account(hs, user_id))["deactivated"]

            # Setting a password (through guardbot, as the claim page does) lifts it.
            user = as_user(hs, named)
            status, body = await api.set_password(user.token, "a long password of mine 7")
            assert (status, body) == (200, {})

            async def lifted() -> bool:
                return not (await account(hs, user_id))["suspended"]

            await wait_for(lifted, timeout=60, what="the suspension lifted")
            # Its own password now: expiry leaves it alone, idle or not.
            kinds = steps(proc, user_id)
            assert ("Suspend", "done") in kinds and ("Unsuspend", "done") in kinds
            assert steps(proc, owner.user_id) == []
            assert not (await account(hs, owner.user_id))["deactivated"]
            assert not (await account(hs, hs.admin.user_id))["deactivated"]
            assert not (await account(hs, hs.bot_user_id))["deactivated"]
            assert not (await account(hs, user_id))["suspended"]


async def test_a_suspension_that_runs_out_ends_the_account_with_erase(
    tmp_path: pathlib.Path,
) -> None:
    (tmp_path / "hs").mkdir()
    (tmp_path / "bot").mkdir()
    async with running_homeserver(tmp_path / "hs", EXTRA) as hs:
        async with guardbot_starter(hs, tmp_path / "bot") as start:
            env = expiry_env(hs, EXPIRY__SUSPENDED_FOR="2s", EXPIRY__ERASE="true")
            proc = await start(**env)
            named = await Api(proc.url).register_pwlu(unique("gone"))
            user_id = named["user_id"]

            async def ended() -> dict[str, Any] | None:
                info = await account(hs, user_id)
                return info if info["deactivated"] else None

            info = await wait_for(ended, timeout=90, what="the suspended named guest ended")
            assert info["erased"] is True
            kinds = steps(proc, user_id)
            assert kinds.count(("Suspend", "done")) == 1
            assert kinds.count(("Deactivate", "done")) == 1
