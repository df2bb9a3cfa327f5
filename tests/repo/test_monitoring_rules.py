"""The shipped alert rules and dashboard as files (monitoring/): Prometheus's own promtool checks
the rules and runs their unit tests (every alert fires when it should and stays silent when it
should); the dashboard imports into Grafana with one data source. Their queries against a real
Prometheus: tests/integration/test_monitoring.py."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest
from ruamel.yaml import YAML

from tests.support.prometheus import DASHBOARD, RULES, alert_expressions, dashboard_queries

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian: apt-get install prometheus)"
)


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    done = subprocess.run([str(PROMTOOL), "check", "rules", str(RULES)], capture_output=True)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


@needs_promtool
def test_every_alert_fires_and_stays_silent_as_its_unit_tests_say() -> None:
    tests = RULES.with_name("guardbot-alerts.test.yml")
    done = subprocess.run([str(PROMTOOL), "test", "rules", str(tests)], capture_output=True)
    assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()
    cases = YAML(typ="safe").load(tests.read_text())["tests"]
    for name, _ in alert_expressions():
        mine = [c["alert_rule_test"][0] for c in cases if c["name"].startswith(name + ":")]
        assert any(c["exp_alerts"] for c in mine), f"{name}: no case where it fires"
        assert any(not c["exp_alerts"] for c in mine), f"{name}: no case where it is silent"


def test_every_alert_says_what_to_check() -> None:
    groups = YAML(typ="safe").load(RULES.read_text())["groups"]
    for rule in (r for g in groups for r in g["rules"]):
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"].endswith("."), rule["alert"]
        assert len(rule["annotations"]["description"]) > 40, rule["alert"]


def test_the_dashboard_uses_one_data_source_input_and_unique_panel_ids() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
    assert len(dashboard_queries()) >= 20
