"""`guardbot doctor` run as an operator runs it, against real Synapses: a good set-up passes, and
each broken one gets a ✗ line naming its fix."""

from __future__ import annotations

import asyncio
import os
import pathlib
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from mautrix.util.async_db import UpgradeTable

from devtools.local_synapse import LocalSynapse
from guardbot import db
from guardbot.config import Config, create_from_example
from tests.support.homeserver import Homeserver, StartGuardbot, free_port
from tests.support.matrix_client import User

LATEST = len(db.upgrade_table.upgrades)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def line(self, name: str) -> str:
        found = [line for line in self.out.splitlines() if line[2:].startswith(name + ":")]
        assert len(found) == 1, f"no single {name!r} line in:\n{self.out}{self.err}"
        return found[0]

    def marks(self) -> dict[str, str]:
        return {line[2:].split(":")[0]: line[0] for line in self.out.splitlines() if ":" in line}


async def doctor(config: pathlib.Path, *args: str, **env: str) -> Result:
    """`python -m guardbot doctor -c config ...` in its own process; env: GUARDBOT_* overrides."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "guardbot",
        "doctor",
        "-c",
        str(config),
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=config.parent,
        env={
            **os.environ,
            "PYTHONIOENCODING": "utf-8",
            **{f"GUARDBOT_{k}": v for k, v in env.items()},
        },
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


def registration_of(hs: Homeserver) -> str:
    return str(hs.config_path.parent / "registration.yaml")


def assert_no_secrets(result: Result, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in result.out + result.err


async def test_good_setup_passes(homeserver: Homeserver, tmp_path: pathlib.Path) -> None:
    database = f"sqlite:{tmp_path / 'guardbot.db'}"
    reg = registration_of(homeserver)
    first = await doctor(homeserver.config_path, "-r", reg, DATABASE=database)
    assert first.code == 1 and "--fix" in first.line("database"), first.out
    assert not (tmp_path / "guardbot.db").exists(), "doctor created the database without --fix"

    fixed = await doctor(homeserver.config_path, "-r", reg, "--fix", DATABASE=database)
    assert fixed.code == 0, fixed.out + fixed.err
    assert "--fix migrated it" in fixed.line("database")

    result = await doctor(homeserver.config_path, "-r", reg, DATABASE=database)
    assert result.code == 0, result.out + result.err
    marks = result.marks()
    # The door is optional: this Synapse has no module, and the doctor says it was not called.
    assert marks.pop("door") == "–" and "has not called it" in result.line("door")
    assert set(marks.values()) == {"✓"}, result.out
    assert "doctor listened on" in result.line("ping")
    assert "Everything checked is fine." in result.out
    assert_no_secrets(result, homeserver.as_token, homeserver.hs_token)


async def counts(hs: Homeserver) -> tuple[int, int]:
    guests = await hs.admin.request("GET", "/_synapse/admin/v2/users", query={"guests": "true"})
    rooms = await hs.admin.request("GET", "/_synapse/admin/v1/rooms")
    return guests["total"], rooms["total_rooms"]


async def test_read_only_changes_nothing_on_the_homeserver(
    homeserver: Homeserver, tmp_path: pathlib.Path
) -> None:
    database = f"sqlite:{tmp_path / 'guardbot.db'}"
    reg = registration_of(homeserver)
    await doctor(homeserver.config_path, "-r", reg, "--fix", DATABASE=database)
    before = await counts(homeserver)
    result = await doctor(homeserver.config_path, "-r", reg, "--read-only", DATABASE=database)
    assert result.code == 0, result.out + result.err
    assert "--read-only" in result.line("guests")
    assert await counts(homeserver) == before
    # Without --read-only the guest probe is the one thing that registers something.
    probing = await doctor(homeserver.config_path, "-r", reg, DATABASE=database)
    assert "probe: registered guest" in probing.line("guests")
    assert (await counts(homeserver))[0] == before[0] + 1


async def test_ping_goes_through_a_running_guardbot(
    homeserver: Homeserver, start_guardbot: StartGuardbot, tmp_path: pathlib.Path
) -> None:
    await start_guardbot()  # its database: tmp_path / guardbot.db, migrated at start
    result = await doctor(
        homeserver.config_path,
        "-r",
        registration_of(homeserver),
        DATABASE=f"sqlite:{tmp_path / 'guardbot.db'}",
    )
    assert result.code == 0, result.out + result.err
    assert "reached the running guardbot" in result.line("ping")


async def test_wrong_hs_token_is_named(homeserver: Homeserver, tmp_path: pathlib.Path) -> None:
    wrong = "not-the-registrations-hs-token-0123456789"
    result = await doctor(
        homeserver.config_path,
        "-r",
        registration_of(homeserver),
        DATABASE=f"sqlite:{tmp_path / 'guardbot.db'}",
        APPSERVICE__HS_TOKEN=wrong,
    )
    assert result.code == 1
    ping = result.line("ping")
    assert ping.startswith("✗") and "hs_token" in ping and "guardbot is not running" in ping
    assert "-g -r" in ping and "restart the homeserver" in ping
    assert "hs_token differs from appservice.hs_token" in result.line("registration")
    assert_no_secrets(result, wrong, homeserver.as_token, homeserver.hs_token)


async def test_wrong_hs_token_in_a_running_guardbot(
    homeserver: Homeserver, start_guardbot: StartGuardbot, tmp_path: pathlib.Path
) -> None:
    wrong = "not-the-registrations-hs-token-9876543210"
    await start_guardbot(APPSERVICE__HS_TOKEN=wrong)
    result = await doctor(
        homeserver.config_path,
        "-r",
        registration_of(homeserver),
        DATABASE=f"sqlite:{tmp_path / 'guardbot.db'}",
        APPSERVICE__HS_TOKEN=wrong,
    )
    ping = result.line("ping")
    assert result.code == 1 and ping.startswith("✗")
    assert "refused the homeserver's hs_token" in ping and "restart guardbot" in ping
    assert_no_secrets(result, wrong, homeserver.as_token, homeserver.hs_token)


async def test_bot_not_admin_gets_the_curl_command(
    homeserver: Homeserver, tmp_path: pathlib.Path
) -> None:
    database = f"sqlite:{tmp_path / 'guardbot.db'}"
    reg = registration_of(homeserver)
    await homeserver.synapse.make_admin(homeserver.admin.token, homeserver.bot_user_id, False)
    try:
        result = await doctor(homeserver.config_path, "-r", reg, "--fix", DATABASE=database)
    finally:
        await homeserver.synapse.make_admin(homeserver.admin.token, homeserver.bot_user_id)
    assert result.code == 1
    line = result.line("bot admin")
    url = f"{homeserver.synapse.base_url}/_synapse/admin/v2/users/{homeserver.bot_user_id}"
    assert line.startswith("✗") and "is not a server admin" in line
    assert "curl -X PUT -H 'Authorization: Bearer <admin access token>'" in line
    assert f"""-d '{{"admin": true}}' {url}""" in line
    assert result.line("bot user").startswith("✓")
    assert [m for m in result.marks().values() if m == "✗"] == ["✗"], result.out


async def test_unreachable_database(homeserver: Homeserver) -> None:
    password = "db-pass-word-4711"
    url = f"postgres://guardbot:{password}@127.0.0.1:{free_port()}/guardbot"
    result = await doctor(homeserver.config_path, "-r", registration_of(homeserver), DATABASE=url)
    assert result.code == 1
    line = result.line("database")
    assert line.startswith("✗") and "cannot use postgres://guardbot:***@127.0.0.1" in line
    assert "check `database` in the config (or GUARDBOT_DATABASE)" in line
    assert_no_secrets(result, password)
    # The other checks still ran.
    assert result.line("homeserver").startswith("✓") and result.line("ping").startswith("✓")


async def test_old_schema_is_migrated_by_fix(homeserver: Homeserver, database_url: str) -> None:
    older = UpgradeTable(database_name="guardbot")
    older.upgrades = db.upgrade_table.upgrades[:1]  # what the first guardbot release made
    database = db.Database.create(database_url, upgrade_table=older)
    await database.start()
    await database.stop()
    reg = registration_of(homeserver)
    result = await doctor(homeserver.config_path, "-r", reg, DATABASE=database_url)
    line = result.line("database")
    assert line.startswith("✗") and f"schema v1, this guardbot needs v{LATEST}" in line
    assert "--fix` to run the migrations" in line
    fixed = await doctor(homeserver.config_path, "-r", reg, "--fix", DATABASE=database_url)
    assert fixed.line("database").startswith("✓"), fixed.out
    check = db.create(database_url)
    check.upgrade_table = None
    await check.start()
    try:
        assert await check.fetchval("SELECT version FROM version") == LATEST
    finally:
        await check.stop()


# -- a Synapse of its own: publication rules, and doctor --fix on a fresh set-up --------------
class DefaultRulesSynapse(LocalSynapse):
    """Synapse with room_list_publication_rules left out of homeserver.yaml entirely."""

    def _default_config(self) -> dict[str, Any]:
        config = super()._default_config()
        del config["room_list_publication_rules"]
        return config


@dataclass
class Setup:
    synapse: LocalSynapse
    config: pathlib.Path
    registration: pathlib.Path


@pytest_asyncio.fixture
async def fresh(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AsyncIterator[Setup]:
    """A new Synapse and a guardbot set-up as the README says, up to (not including) --fix."""
    rules = request.param
    registration = tmp_path / "registration.yaml"
    if rules == "absent":
        synapse: LocalSynapse = DefaultRulesSynapse(
            tmp_path / "hs", appservice_files=[registration]
        )
    else:
        extra = {"room_list_publication_rules": [{"action": rules}]}
        synapse = LocalSynapse(tmp_path / "hs", appservice_files=[registration], extra_config=extra)
    config_path = tmp_path / "config.yaml"
    create_from_example(str(config_path))
    config = Config(str(config_path))
    config.load()
    port = free_port()
    config["homeserver.address"] = synapse.base_url
    config["homeserver.domain"] = synapse.server_name
    config["appservice.address"] = f"http://127.0.0.1:{port}"
    config["appservice.port"] = port
    config["database"] = f"sqlite:{tmp_path / 'guardbot.db'}"
    config.save()
    subprocess.run(
        [sys.executable, "-m", "guardbot", "-c", str(config_path), "-g", "-r", str(registration)],
        check=True,
        capture_output=True,
        cwd=tmp_path,
    )
    await synapse.start()
    try:
        yield Setup(synapse, config_path, registration)
    finally:
        await synapse.stop()


async def listed_rooms(synapse: LocalSynapse) -> list[Any]:
    user_id, token = await synapse.register_user(f"observer{free_port()}", "pw")
    user = User(synapse.base_url, user_id, token)
    return (await user.request("GET", "/_matrix/client/v3/publicRooms"))["chunk"]


@pytest.mark.parametrize("fresh", ["absent", "deny"], indirect=True)
async def test_publication_rules_that_deny_all(fresh: Setup) -> None:
    before = await doctor(fresh.config, "-r", str(fresh.registration))
    assert "--fix" in before.line("bot user") and "--fix" in before.line("database")
    assert "needs @guardbot:localhost registered" in before.line("directory")

    result = await doctor(fresh.config, "-r", str(fresh.registration), "--fix")
    assert result.code == 1
    assert "registered it (--fix)" in result.line("bot user")
    line = result.line("directory")
    assert line.startswith("✗") and "room_list_publication_rules refused" in line
    assert "set room_list_publication_rules: [{action: allow}]" in line
    assert "restart the homeserver" in line
    assert await listed_rooms(fresh.synapse) == []


@pytest.mark.parametrize("fresh", ["allow"], indirect=True)
async def test_probe_room_is_listed_then_purged(fresh: Setup) -> None:
    first = await doctor(fresh.config, "-r", str(fresh.registration), "--fix")
    assert first.line("directory").startswith("✓"), first.out
    admin_id, admin_token = await fresh.synapse.register_user("admin", "pw", admin=True)
    await fresh.synapse.make_admin(admin_token, "@guardbot:localhost")
    second = await doctor(fresh.config, "-r", str(fresh.registration))
    assert second.code == 0, second.out + second.err
    assert "listed it for a moment, unlisted it, purged it (!" in second.line("directory")
    left = re.search(r"left and forgot it \((![^ )]+)\)", first.line("directory"))
    purged = re.search(r"purged it \((![^ )]+)\)", second.line("directory"))
    assert left and purged
    admin = User(fresh.synapse.base_url, admin_id, admin_token)
    rooms = {
        r["room_id"] for r in (await admin.request("GET", "/_synapse/admin/v1/rooms"))["rooms"]
    }
    # Not yet admin, the first run could only leave its room; as admin, the second purged its own.
    assert left.group(1) in rooms and purged.group(1) not in rooms
    assert await listed_rooms(fresh.synapse) == []


async def test_named_guests_need_open_registration_and_the_doctor_checks_it(
    homeserver: Homeserver, tmp_path: pathlib.Path
) -> None:
    """A new admin took "the homeserver must allow registration" literally; the doctor now
    says whether it does, when pwlu.enabled (the session's Synapse lets clients register)."""
    database = f"sqlite:{tmp_path / 'guardbot.db'}"
    reg = registration_of(homeserver)
    pwlu = {"PWLU__ENABLED": "true", "PWLU__PUBLIC_URL": "https://matrix.example.org"}
    result = await doctor(homeserver.config_path, "-r", reg, "--fix", DATABASE=database, **pwlu)
    assert result.line("sign-up").startswith("✓"), result.out
    assert "lets clients register" in result.line("sign-up")
    without = await doctor(homeserver.config_path, "-r", reg, DATABASE=database)
    assert "sign-up:" not in without.out  # only when named guests are on
