"""Writes monitoring/guardbot-alerts.test.yml (promtool's unit tests of the alert rules) from
the cases below and the rules' own labels and annotations, so a reworded summary needs no
second edit. Run from the repository's root: python -m devtools.alert_rule_tests"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML

yaml = YAML()
rules = yaml.load(open("monitoring/guardbot-alerts.yml"))["groups"][0]["rules"]
by_name = {r["alert"]: r for r in rules}


def s(series: str, values: str) -> dict[str, str]:
    return {"series": series, "values": values}


# (alert, comment, input series, eval time, extra expected labels, fires?)
cases = [
    (
        "GuardbotNoLeader",
        "the only process stands by",
        [s('guardbot_leader{job="guardbot",instance="a"}', "0x10")],
        "5m",
        {},
        True,
    ),
    ("GuardbotNoLeader", "no guardbot is scraped at all", [], "5m", {}, True),
    (
        "GuardbotNoLeader",
        "one leads",
        [s('guardbot_leader{job="guardbot",instance="a"}', "1x10")],
        "5m",
        {},
        False,
    ),
    (
        "GuardbotStandbyMissing",
        "the standby is down",
        [
            s('up{job="guardbot",instance="a"}', "1x10"),
            s('up{job="guardbot",instance="b"}', "0x10"),
            s('guardbot_leader{job="guardbot",instance="a"}', "1x10"),
        ],
        "10m",
        {},
        True,
    ),
    (
        "GuardbotStandbyMissing",
        "both run, one stands by",
        [
            s('up{job="guardbot",instance="a"}', "1x10"),
            s('up{job="guardbot",instance="b"}', "1x10"),
            s('guardbot_leader{job="guardbot",instance="a"}', "1x10"),
            s('guardbot_leader{job="guardbot",instance="b"}', "0x10"),
        ],
        "10m",
        {},
        False,
    ),
    (
        "GuardbotStandbyMissing",
        "a single process, no pair",
        [
            s('up{job="guardbot",instance="a"}', "1x10"),
            s('guardbot_leader{job="guardbot",instance="a"}', "1x10"),
        ],
        "10m",
        {},
        False,
    ),
    (
        "GuardbotDoorSilent",
        "last called 25 hours ago",
        [s('guardbot_door_last_call_timestamp_seconds{job="guardbot",instance="a"}', "60x1500")],
        "1500m",
        {"job": "guardbot"},
        True,
    ),
    (
        "GuardbotDoorSilent",
        "called all along",
        [s('guardbot_door_last_call_timestamp_seconds{job="guardbot",instance="a"}', "0+60x1500")],
        "1500m",
        {},
        False,
    ),
    (
        "GuardbotDoorSilent",
        "never called (no module configured)",
        [s('guardbot_door_last_call_timestamp_seconds{job="guardbot",instance="a"}', "0x1500")],
        "1500m",
        {},
        False,
    ),
    (
        "GuardbotDoorWrongToken",
        "refused for a wrong token",
        [
            s(
                'guardbot_door_token_refused_total{job="guardbot",instance="a",reason="wrong"}',
                "0 0 1 2 3",
            )
        ],
        "4m",
        {},
        True,
    ),
    (
        "GuardbotDoorWrongToken",
        "no refusal",
        [
            s(
                'guardbot_door_token_refused_total{job="guardbot",instance="a",reason="wrong"}',
                "0x10",
            )
        ],
        "5m",
        {},
        False,
    ),
    (
        "GuardbotDoorLateOrUnsure",
        "a third of the answers late",
        [
            s(
                'guardbot_door_answers_total{job="guardbot",instance="a",callback="user_may_join_room",answer="allowed"}',
                "0+10x30",
            ),
            s(
                'guardbot_door_answers_total{job="guardbot",instance="a",callback="user_may_join_room",answer="late"}',
                "0+5x30",
            ),
        ],
        "25m",
        {},
        True,
    ),
    (
        "GuardbotDoorLateOrUnsure",
        "every answer on time",
        [
            s(
                'guardbot_door_answers_total{job="guardbot",instance="a",callback="user_may_join_room",answer="allowed"}',
                "0+10x30",
            ),
            s(
                'guardbot_door_answers_total{job="guardbot",instance="a",callback="user_may_join_room",answer="late"}',
                "0x30",
            ),
        ],
        "25m",
        {},
        False,
    ),
    (
        "GuardbotActionsWaitingOnHomeserver",
        "three actions wait on the homeserver",
        [s('guardbot_actions_waiting{job="guardbot",instance="a",on="homeserver"}', "3x20")],
        "15m",
        {},
        True,
    ),
    (
        "GuardbotActionsWaitingOnHomeserver",
        "only due actions",
        [
            s('guardbot_actions_waiting{job="guardbot",instance="a",on="homeserver"}', "0x20"),
            s('guardbot_actions_waiting{job="guardbot",instance="a",on="nothing"}', "5x20"),
        ],
        "15m",
        {},
        False,
    ),
    (
        "GuardbotGuestInsideListedRoom",
        "a removal pending for 400 s",
        [s('guardbot_removal_pending_oldest_seconds{job="guardbot",instance="a"}', "400x10")],
        "5m",
        {},
        True,
    ),
    (
        "GuardbotGuestInsideListedRoom",
        "removals done within seconds",
        [s('guardbot_removal_pending_oldest_seconds{job="guardbot",instance="a"}', "10x10")],
        "5m",
        {},
        False,
    ),
    (
        "GuardbotRemindersFailing",
        "a reminder failed",
        [
            s(
                'guardbot_actions_total{job="guardbot",instance="a",kind="Remind",state="failed"}',
                "0 0 1 1 1",
            )
        ],
        "4m",
        {},
        True,
    ),
    (
        "GuardbotRemindersFailing",
        "reminders go",
        [
            s(
                'guardbot_actions_total{job="guardbot",instance="a",kind="Remind",state="failed"}',
                "0x10",
            ),
            s(
                'guardbot_actions_total{job="guardbot",instance="a",kind="Remind",state="done"}',
                "0+1x10",
            ),
        ],
        "5m",
        {},
        False,
    ),
    (
        "GuardbotDatabaseUnreachable",
        "the database is away",
        [s('guardbot_database_up{job="guardbot",instance="a"}', "0x10")],
        "5m",
        {"job": "guardbot", "instance": "a"},
        True,
    ),
    (
        "GuardbotDatabaseUnreachable",
        "the database answers",
        [s('guardbot_database_up{job="guardbot",instance="a"}', "1x10")],
        "5m",
        {},
        False,
    ),
]

tests: list[dict[str, Any]] = []
for alert, comment, series, at, labels, fires in cases:
    rule = by_name[alert]
    expected: list[dict[str, Any]] = []
    if fires:
        expected = [
            {
                "exp_labels": {"severity": rule["labels"]["severity"], **labels},
                "exp_annotations": {k: str(v) for k, v in rule["annotations"].items()},
            }
        ]
    tests.append(
        {
            "name": f"{alert}: {comment}",
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{"eval_time": at, "alertname": alert, "exp_alerts": expected}],
        }
    )
for name in by_name:
    assert any(
        t["name"].startswith(name + ":") and t["alert_rule_test"][0]["exp_alerts"] for t in tests
    ), name
    assert any(
        t["name"].startswith(name + ":") and not t["alert_rule_test"][0]["exp_alerts"]
        for t in tests
    ), name

out = {"rule_files": ["guardbot-alerts.yml"], "evaluation_interval": "1m", "tests": tests}
with open("monitoring/guardbot-alerts.test.yml", "w") as f:
    f.write(
        "# promtool test rules monitoring/guardbot-alerts.test.yml: every alert fires when it\n"
    )
    f.write(
        "# should and stays silent when it should (tests/repo/test_monitoring_rules.py runs it).\n"
    )
    yaml.dump(out, f)
