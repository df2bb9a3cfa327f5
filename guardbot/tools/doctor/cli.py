"""`guardbot doctor -c config.yaml [-r registration.yaml] [--fix] [--read-only]`

Checks a set-up and prints one line per check: ✓, or ✗ with the fix, or – when it could not be
checked. Exits 1 if anything is ✗. Changes nothing on its own; `--fix` does only what guardbot
itself would do at start: run the database migrations and register guardbot's user. Two
homeserver checks have no read-only probe in Synapse (guests, and room publication when nothing
is listed yet); they say what they did on their line, and `--read-only` skips them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import shlex
import sys
import time
from collections.abc import Awaitable
from typing import Any, TypeVar, cast

from mautrix.util.async_db import Scheme
from ruamel.yaml import YAML

from guardbot import db, logs
from guardbot.config import Config, ConfigError, load
from guardbot.db import single_instance
from guardbot.matrix.client import Homeserver, HomeserverError
from guardbot.tools.doctor.homeserver import GUEST_SAMPLE, HomeserverChecks
from guardbot.tools.doctor.ping import check_ping
from guardbot.tools.doctor.report import Report

DB_TIMEOUT = 15
T = TypeVar("T")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="guardbot doctor", description="Check a guardbot set-up, one line per check."
    )
    parser.add_argument("-c", "--config", default="config.yaml", metavar="<path>")
    parser.add_argument(
        "-r",
        "--registration",
        metavar="<path>",
        help="the registration file the homeserver loads (default: registration.yaml, if any)",
    )
    parser.add_argument(
        "--fix",
        action="store_true",
        help="run the database migrations and register guardbot's user if needed",
    )
    parser.add_argument(
        "--read-only",
        action="store_true",
        help="skip the two checks that must create something on the homeserver",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except KeyboardInterrupt:
        return 130


async def run(args: argparse.Namespace, stream: Any = None) -> int:
    report = Report(stream)
    try:
        config = load(args.config, save=False)
    except ConfigError as e:
        fix = f"correct it in {args.config} or its GUARDBOT_* variable"
        if not os.path.exists(args.config):
            fix = f"pass -c <your config>, or create one: guardbot -c {args.config} -g -r <file>"
        report.fail("config", str(e), fix)
        return report.summary()
    report.redact = logs.Redactor(logs.secrets_of(config))
    _quiet_logging(logs.secrets_of(config))
    report.ok("config", f"{os.path.abspath(args.config)} is valid")
    command = "guardbot doctor -c " + shlex.quote(args.config)
    reg_path = args.registration or "registration.yaml"
    regen = (
        f"run `guardbot -c {shlex.quote(args.config)} -g -r {shlex.quote(reg_path)}` (it keeps"
        " the tokens) and restart the homeserver, then guardbot"
    )
    if args.registration:
        command += " -r " + shlex.quote(args.registration)
    registration = check_registration_file(config, args.registration, report, regen)
    await check_database(config, report, args.fix, command)
    await check_door(config, report)

    hs = Homeserver(
        config["homeserver.address"],
        config["appservice.as_token"],
        config.bot_user_id,
        timeout=30,
        log_stale_token=False,
    )
    checks = HomeserverChecks(
        config, hs, report, fix=args.fix, read_only=args.read_only, regen=regen, command=command
    )
    try:
        await _homeserver(checks, config, hs, report, registration, reg_path, regen)
    finally:
        await hs.close()
    return report.summary()


async def _homeserver(
    checks: HomeserverChecks,
    config: Config,
    hs: Homeserver,
    report: Report,
    registration: dict[str, Any] | None,
    reg_path: str,
    regen: str,
) -> None:
    later = ["appservice", "ping", "bot user", "bot admin", "guests", "directory"]
    if not await checks.reachable():
        for name in later:
            report.skip(name, "the homeserver is unreachable")
        check_namespaces(config, registration, None, report, regen)  # the file, at least
        return
    known_check = checks.appservice_known(os.path.abspath(reg_path))
    known = (await _guarded(report, "appservice", known_check)) is True
    unknown = "the homeserver does not know guardbot's as_token"
    if known:
        await _guarded(report, "ping", check_ping(config, hs, report, regen))
        await _guarded(report, "bot user", checks.bot_user())
    else:
        report.skip("ping", unknown)
        report.skip("bot user", unknown)
        report.skip("bot admin", unknown)
    await _guarded(report, "guests", checks.guests())
    if config["pwlu.enabled"]:
        await _guarded(report, "sign-up", checks.user_registration())
        await _guarded(report, "client addresses", checks.client_addresses())
        if config["pwlu.user_type"]:
            await _guarded(report, "user type", checks.user_type(config["pwlu.user_type"]))
    if known:
        await _guarded(report, "directory", checks.directory())
    else:
        report.skip("directory", unknown)
    hs_covers_guests = await _guarded(report, "namespaces", checks.namespaces()) if known else None
    if hs_covers_guests is not _FAILED:
        check_namespaces(config, registration, hs_covers_guests, report, regen)


_FAILED: Any = object()


async def _guarded(report: Report, name: str, check: Awaitable[T]) -> T:
    """One check's surprise (an unexpected error answer) costs that check, not the rest."""
    try:
        return await check
    except HomeserverError as e:
        report.fail(name, f"unexpected answer from the homeserver ({e})", "see the error")
        return cast(T, _FAILED)


# -- registration file ---------------------------------------------------------------------------
def check_registration_file(
    config: Config, path: str | None, report: Report, regen: str
) -> dict[str, Any] | None:
    """The file the homeserver should load: does it match the config? None if not readable."""
    name = "registration"
    shown = path or "registration.yaml"
    if path is None and not os.path.exists(shown):
        report.skip(name, "no registration.yaml here; pass -r <the file the homeserver loads>")
        return None
    try:
        with open(shown) as stream:
            data = YAML(typ="safe").load(stream)
    except OSError as e:
        report.fail(name, f"cannot read {shown} ({e.strerror})", f"pass the right -r, or {regen}")
        return None
    except Exception as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        report.fail(name, f"{shown} is not valid YAML ({first})", regen)
        return None
    if not isinstance(data, dict):
        report.fail(name, f"{shown} is not a registration (not a mapping)", regen)
        return None
    expected = {
        "id": config["appservice.id"],
        "url": config["appservice.address"],
        "sender_localpart": config["appservice.bot_username"],
        "as_token": config["appservice.as_token"],
        "hs_token": config["appservice.hs_token"],
    }
    config_key = {
        "id": "appservice.id",
        "url": "appservice.address",
        "sender_localpart": "appservice.bot_username",
    }
    wrong = [
        f"{key} differs from {config_key.get(key, 'appservice.' + key)}"
        for key, value in expected.items()
        if data.get(key) != value  # the tokens themselves are never printed
    ]
    if wrong:
        report.fail(name, f"{shown} does not match the config: {', '.join(wrong)}", regen)
    else:
        report.ok(name, f"{shown} matches the config (id, url, sender, both tokens)")
    return data


def _users_namespaces(registration: dict[str, Any]) -> list[dict[str, Any]]:
    namespaces = registration.get("namespaces")
    users = namespaces.get("users") if isinstance(namespaces, dict) else None
    return [n for n in users if isinstance(n, dict)] if isinstance(users, list) else []


def _matching(namespaces: list[dict[str, Any]], user_id: str) -> list[dict[str, Any]]:
    found = []
    for ns in namespaces:
        try:
            if re.match(str(ns.get("regex", "")), user_id):  # Synapse uses re.match too
                found.append(ns)
        except re.error:
            continue
    return found


def check_namespaces(
    config: Config,
    registration: dict[str, Any] | None,
    hs_covers_guests: bool | None,
    report: Report,
    regen: str,
) -> None:
    name = "namespaces"
    domain, bot = config["homeserver.domain"], config.bot_user_id
    guests = [f"@{n}:{domain}" for n in ("1", "42", GUEST_SAMPLE)]
    problems = []
    if registration is not None:
        users = _users_namespaces(registration)
        if not any(ns.get("exclusive") is True for ns in _matching(users, bot)):
            problems.append(f"no exclusive users namespace for {bot}")
        for guest in guests:
            matching = _matching(users, guest)
            if not matching:
                problems.append(f"no users namespace matches guest IDs like {guest}")
                break
            if any(ns.get("exclusive") is True for ns in matching):
                problems.append(f"the namespace for guest IDs like {guest} must not be exclusive")
                break
    if problems:
        report.fail(name, "the registration file: " + "; ".join(problems), regen)
    elif hs_covers_guests is False:
        report.fail(
            name,
            f"the registration the homeserver loaded does not cover guest IDs ({guests[0]}):"
            " guest joins would never reach guardbot",
            "point app_service_config_files at the registration guardbot -g wrote (see -r) and"
            " restart the homeserver",
        )
    elif registration is None and hs_covers_guests is None:
        report.skip(name, "no registration file to read, and the homeserver could not be asked")
    else:
        seen = "the homeserver confirms guest IDs are in it" if hs_covers_guests else "file only"
        report.ok(
            name,
            f"guest IDs (@<digits>:{domain}, not exclusive) and {bot} (exclusive) are"
            f" guardbot's, so every guest's membership events reach it ({seen})",
        )


# -- database ------------------------------------------------------------------------------------
async def check_door(config: Config, report: Report) -> None:
    """Does the homeserver really ask guardbot at the door? The module's ping (do_ping) and the
    first call after each start are recorded in the database; nothing else can tell."""
    name = "door"
    if config["antispam.token"] == "generate":
        report.skip(name, 'not set up: no antispam.token (docs/how-it-works.md, "The door")')
        return
    database = db.create(config["database"])
    database.upgrade_table = None  # read only
    if database.scheme == Scheme.SQLITE and not os.path.exists(database.url.path):
        report.skip(name, "no database yet (see the database line)")
        return
    try:
        await asyncio.wait_for(database.start(), DB_TIMEOUT)
        settings = db.SettingsStore(database)
        seen = await settings.door_last_seen()
        refused = await settings.door_last_refused()
    except Exception:
        report.skip(name, "the database cannot tell (see the database line)")
        return
    finally:
        await _stop(database)
    if refused is not None and (seen is None or refused[1] >= seen[1]):
        last_good = f"; the last good call was at {_utc(seen[1])}" if seen else ""
        report.fail(
            name,
            f"the homeserver called it at {_utc(refused[1])} with a {refused[0]}: joins go"
            f" through unchecked by the door (fail_open) or are all refused{last_good}",
            f"copy antispam.token from {os.path.abspath(config.path)} into homeserver.yaml's"
            " synapse_http_antispam entry (authorization) and restart the homeserver",
        )
        return
    if seen is None:
        report.skip(
            name,
            "the homeserver has not called it yet: install synapse-http-antispam, add the"
            " modules entry `guardbot -g` prints (with do_ping: true) to homeserver.yaml,"
            " restart Synapse while guardbot runs",
        )
        return
    what, at = seen
    report.ok(name, f"the homeserver called it at {_utc(at)} ({what})")


def _utc(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ms / 1000))


async def check_database(config: Config, report: Report, fix: bool, command: str) -> None:
    name = "database"
    url = config["database"]
    shown = logs.redact_url(url)
    latest = len(db.upgrade_table.upgrades)
    database = db.create(url)
    sqlite_path = database.url.path if database.scheme == Scheme.SQLITE else None
    if sqlite_path is not None and not os.path.exists(sqlite_path) and not fix:
        # Opening it would create the file: the doctor does that only when asked to.
        report.fail(
            name,
            f"{shown}: the file does not exist yet",
            f"run `{command} --fix` to create it and its tables (guardbot also does at start)",
        )
        return
    if not fix:
        database.upgrade_table = None  # read only: no migrations without --fix
    else:
        single_instance.keep_private(database)  # a file --fix makes is guardbot's alone
    try:
        await asyncio.wait_for(database.start(), DB_TIMEOUT)
        version = await _schema_version(database)
    except Exception as e:
        first = (str(e) or type(e).__name__).splitlines()[0]
        if isinstance(e, TimeoutError):
            first = f"no answer in {DB_TIMEOUT} s"
        report.fail(
            name,
            f"cannot use {shown} ({first})",
            "check `database` in the config (or GUARDBOT_DATABASE): the server must be running"
            " and reachable, the database must exist and the user may log in",
        )
        return
    finally:
        await _stop(database)
    if version == latest:
        done = " (--fix migrated it)" if fix else ""
        report.ok(name, f"{shown} is reachable and at the latest schema, v{latest}{done}")
    elif version < latest:
        report.fail(
            name,
            f"{shown} is at schema v{version}, this guardbot needs v{latest}",
            f"run `{command} --fix` to run the migrations (guardbot also does at start)",
        )
    else:
        report.fail(
            name,
            f"{shown} is at schema v{version}, newer than this guardbot knows (v{latest})",
            "upgrade guardbot, or point `database` at this version's database",
        )


async def _schema_version(database: db.Database) -> int:
    if not await database.table_exists("version"):
        return 0
    return int(await database.fetchval("SELECT version FROM version LIMIT 1") or 0)


async def _stop(database: db.Database) -> None:
    try:
        await database.stop()
    except Exception:
        pass  # it never started


def _quiet_logging(secrets: list[str]) -> None:
    """The doctor's own lines are its output; libraries speak only when something is wrong."""
    logging.basicConfig(level=logging.ERROR, format="guardbot doctor: %(name)s: %(message)s")
    logs.install_redaction(secrets)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
