"""What guardbot writes holds secrets: readable only by whom must read it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from guardbot import db
from guardbot.db import single_instance
from tests.support.cli import guardbot


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_generate_writes_the_registration_for_owner_and_group_and_keeps_the_admins_mode(
    tmp_path: Path,
) -> None:
    assert guardbot(tmp_path, "-g").returncode == 0
    config = tmp_path / "config.yaml"
    assert mode(config) == 0o600  # tokens and the PWLU secret
    config.write_text(config.read_text().replace("domain: example.org", "domain: my.org"))
    assert guardbot(tmp_path, "-g").returncode == 0
    registration = tmp_path / "registration.yaml"
    assert mode(registration) == 0o640  # as_token: the homeserver's group reads it
    # The admin gave it to the homeserver their own way; a rewrite keeps that, same file.
    os.chmod(registration, 0o644)
    inode = registration.stat().st_ino
    config.write_text(config.read_text().replace("29330", "29331"))
    assert guardbot(tmp_path, "-g").returncode == 0
    assert "29331" in registration.read_text()
    assert mode(registration) == 0o644 and registration.stat().st_ino == inode


def test_the_sqlite_database_is_guardbots_alone(tmp_path: Path) -> None:
    fresh = db.create(f"sqlite:{tmp_path / 'new.db'}")
    held = single_instance.lock(fresh)
    try:
        assert mode(tmp_path / "new.db") == 0o600
    finally:
        assert held is not None
        held.close()
    old = tmp_path / "old.db"
    old.write_bytes(b"")
    os.chmod(old, 0o644)  # made by an earlier guardbot under a 022 umask
    held = single_instance.lock(db.create(f"sqlite:{old}"))
    try:
        assert mode(old) == 0o600
    finally:
        assert held is not None
        held.close()
