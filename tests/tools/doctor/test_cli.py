"""`guardbot doctor`'s checks of the files (guardbot/tools/doctor/cli.py): does the
registration the homeserver loads match the config, and do its namespaces bring every
guest's membership events to guardbot? The whole doctor against a real Synapse is in
tests/integration/test_doctor.py."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from guardbot import registration
from guardbot.config import Config, load
from guardbot.tools.doctor.cli import check_namespaces, check_registration_file
from guardbot.tools.doctor.report import Report
from tests.support.cli import edited, write

REGEN = "run guardbot -g"


def config(tmp_path: Path) -> Config:
    return load(str(write(tmp_path, edited())), environ={})


def checked(check: Any, *args: Any) -> tuple[Any, list[str]]:
    out = io.StringIO()
    report = Report(out)
    result = check(*args[:-1], report, args[-1])
    return result, out.getvalue().splitlines()


def test_a_registration_that_matches_the_config_passes(tmp_path: Path) -> None:
    c = config(tmp_path)
    path = tmp_path / "registration.yaml"
    path.write_text(json.dumps(registration.build(c)))
    data, lines = checked(check_registration_file, c, str(path), REGEN)
    assert data is not None and lines == [
        f"[ok] registration: {path} matches the config (id, url, sender, both tokens)"
    ]


def test_a_registration_with_other_tokens_fails_without_showing_them(tmp_path: Path) -> None:
    c = config(tmp_path)
    stale = registration.build(c) | {"as_token": "an-old-secret", "url": "http://elsewhere"}
    path = tmp_path / "registration.yaml"
    path.write_text(json.dumps(stale))
    _, (line,) = checked(check_registration_file, c, str(path), REGEN)
    assert line.startswith("[FAIL] registration:") and line.endswith(f"-> fix: {REGEN}")
    assert "url differs from appservice.address" in line
    assert "as_token differs from appservice.as_token" in line
    assert "an-old-secret" not in line and "as-secret" not in line
    _, (missing,) = checked(check_registration_file, c, str(tmp_path / "nope.yaml"), REGEN)
    assert missing.startswith("[FAIL] registration: cannot read")


def test_namespaces_must_bring_guests_to_guardbot_without_owning_them(tmp_path: Path) -> None:
    c = config(tmp_path)
    good = registration.build(c)
    _, (line,) = checked(check_namespaces, c, good, True, REGEN)
    assert line.startswith("[ok] namespaces: guest IDs")
    owned = json.loads(json.dumps(good))
    owned["namespaces"]["users"][1]["exclusive"] = True  # guests could no longer register
    _, (line,) = checked(check_namespaces, c, owned, True, REGEN)
    assert "must not be exclusive" in line and line.startswith("[FAIL]")
    _, (line,) = checked(check_namespaces, c, good, False, REGEN)  # not what the homeserver has
    assert line.startswith("[FAIL] namespaces: the registration the homeserver loaded")
    _, (line,) = checked(check_namespaces, c, None, None, REGEN)
    assert line.startswith("[--] namespaces: not checked")
