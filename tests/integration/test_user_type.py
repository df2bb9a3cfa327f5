"""The mark for admin tools (pwlu.user_type), against a real Synapse of its own that admits the
type (user_types.extra_user_types): set on a named guest while passwordless, cleared when they
set a password; `guardbot doctor` says whether the homeserver accepts the type."""

from __future__ import annotations

import os
import pathlib

import pytest

from tests.support.doctor import doctor_line
from tests.support.homeserver import Homeserver, guardbot_starter, running_homeserver
from tests.support.matrix_client import q, wait_for
from tests.support.pwlu_client import Api, as_user, pwlu_env, unique

pytestmark = pytest.mark.integration

EXTRA = {
    "enable_registration": True,
    "enable_registration_without_verification": True,
    "user_types": {"extra_user_types": ["named_guest"]},
}


async def user_type(hs: Homeserver, user_id: str) -> str | None:
    info = await hs.admin.request("GET", f"/_synapse/admin/v2/users/{q(user_id)}")
    return info["user_type"]


async def test_a_named_guest_is_marked_until_they_set_a_password(tmp_path: pathlib.Path) -> None:
    (tmp_path / "hs").mkdir()
    (tmp_path / "bot").mkdir()
    async with running_homeserver(tmp_path / "hs", EXTRA) as hs:
        async with guardbot_starter(hs, tmp_path / "bot") as start:
            proc = await start(**pwlu_env(hs, PWLU__USER_TYPE="named_guest"))
            api = Api(proc.url)
            named = await api.register_pwlu(unique("marked"))
            user_id = named["user_id"]

            async def marked() -> bool:
                return await user_type(hs, user_id) == "named_guest"

            await wait_for(marked, what="the named guest's user_type")
            status, body = await api.set_password(
                as_user(hs, named).token, "my very own password 9"
            )
            assert (status, body) == (200, {})

            async def cleared() -> bool:
                return await user_type(hs, user_id) is None

            await wait_for(cleared, what="the user_type cleared")

        env = {
            **os.environ,
            "GUARDBOT_PWLU__ENABLED": "true",
            "GUARDBOT_PWLU__PUBLIC_URL": "http://127.0.0.1:1",
            "GUARDBOT_PWLU__USER_TYPE": "named_guest",
        }
        line, out = doctor_line(hs.config_path, env, tmp_path, "user type")
        assert "accepts the user_type 'named_guest'" in line, out
        assert await user_type(hs, hs.bot_user_id) is None  # put back
        env["GUARDBOT_PWLU__USER_TYPE"] = "unheard_of"
        line, out = doctor_line(hs.config_path, env, tmp_path, "user type")
        assert "refuses the user_type 'unheard_of'" in line, out
        assert "extra_user_types: [unheard_of]" in line, out
