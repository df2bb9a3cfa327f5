"""One guardbot per SQLite file (db/single_instance.py)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML

from tests.support.cli import edited, error_lines, guardbot, write

_yaml = YAML(typ="safe")


def test_a_second_guardbot_on_one_sqlite_file_is_refused(tmp_path: Path) -> None:
    """SQLite serves one guardbot: a second process on the same file would act too. It is
    refused before it opens the database, and told to use PostgreSQL for a pair."""
    import fcntl

    write(tmp_path, edited(("database: sqlite:guardbot.db", "database: sqlite:shared.db")))
    with open(tmp_path / "shared.db.lock", "w") as held:
        held.write("pid 4242\n")
        held.flush()
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the first guardbot, still running
        result = guardbot(tmp_path, "-c", "config.yaml")
    assert result.returncode == 2, result.stderr
    (line,) = [line for line in error_lines(result.stderr) if line.startswith("guardbot:")]
    assert "shared.db is in use by guardbot pid 4242" in line and "PostgreSQL" in line
    assert not (tmp_path / "shared.db").exists()  # refused before touching the database
