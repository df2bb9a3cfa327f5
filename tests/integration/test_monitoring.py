"""The shipped dashboard and alert rules against a real Prometheus scraping a running guardbot
and its Synapse (with the door) while a guest is refused at the door and another removed:
every dashboard query returns series, every alert expression names only metrics and labels
that exist, and every rule evaluates without error."""

from __future__ import annotations

import pathlib
import shutil

import aiohttp
import pytest

from tests.support.homeserver import free_port, guardbot_starter, running_homeserver
from tests.support.matrix_client import MatrixError, wait_for
from tests.support.prometheus import (
    alert_expressions,
    dashboard_queries,
    running_prometheus,
    selectors,
)
from tests.support.rooms import listed_room, wait_removed

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        shutil.which("prometheus") is None,
        reason="Prometheus is not installed (Debian: apt-get install prometheus)",
    ),
]

EXTRA = {"enable_registration": True, "enable_registration_without_verification": True}


async def synapse_counts_a_failed_transaction(port: int) -> bool:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/_synapse/metrics") as resp:
            text = await resp.text()
    return "synapse_appservice_api_failed_transactions_total{" in text


async def test_dashboard_and_alerts_against_a_real_prometheus(tmp_path: pathlib.Path) -> None:
    for part in ("hs", "bot", "prometheus"):
        (tmp_path / part).mkdir()
    async with running_homeserver(tmp_path / "hs", EXTRA, door=True, metrics=True) as hs:
        synapse_metrics = hs.synapse.metrics_port
        assert synapse_metrics is not None
        alice = await hs.user("alice")
        # Before guardbot runs, Synapse's first transaction to it fails: its failure counter
        # (a dashboard panel) then exists.
        await alice.create_room(listed=False, invite=[hs.bot_user_id])
        await wait_for(
            lambda: synapse_counts_a_failed_transaction(synapse_metrics),
            timeout=60,
            what="Synapse to count a failed appservice transaction",
        )
        metrics_port = free_port()
        targets = {
            "guardbot": (f"127.0.0.1:{metrics_port}", "/metrics"),
            "synapse": (f"127.0.0.1:{synapse_metrics}", "/_synapse/metrics"),
        }
        async with (
            guardbot_starter(hs, tmp_path / "bot") as start,
            running_prometheus(tmp_path / "prometheus", targets) as prometheus,
        ):
            await start(
                POLICY__LISTED_ROOMS="kick",
                METRICS__ENABLED="true",
                METRICS__LISTEN_ADDRESS=f"127.0.0.1:{metrics_port}",
            )
            listed = await listed_room(hs, alice)
            refused = await hs.guest()
            with pytest.raises(MatrixError) as door:
                await refused.join(listed)
            assert door.value.status == 403

            # Another guest gets into a room that is published afterwards: swept out.
            later = await listed_room(hs, alice, listed=False)
            removed = await hs.guest()
            await removed.join(later)
            await alice.set_listed(later, True)
            await wait_removed(alice, later, removed.user_id)

            async def scraped() -> bool:
                done = await prometheus.query("sum(guardbot_guests_removed_total) >= 1")
                seen = await prometheus.query(
                    'sum(guardbot_door_answers_total{answer="refused"}) >= 1'
                )
                # rate() over the dashboard's window needs two samples after the events.
                return bool(done and seen)

            await wait_for(scraped, timeout=60, what="Prometheus to scrape the removal")
            await wait_for(
                lambda: prometheus.query("count_over_time(guardbot_guests_removed_total[1m]) >= 3"),
                timeout=30,
                what="a few scrapes after the removal",
            )

            empty = []
            for title, expr in dashboard_queries():
                query = expr.replace("$__rate_interval", "1m")
                if not await prometheus.query(query):
                    empty.append(f"{title}: {query}")
            assert not empty, "dashboard queries without series:\n" + "\n".join(empty)

            missing = []
            for name, expr in [*alert_expressions(), *dashboard_queries()]:
                for selector in selectors(expr):
                    if not await prometheus.query(f"count({selector})"):
                        missing.append(f"{name}: {selector}")
            assert not missing, "selectors matching no series:\n" + "\n".join(missing)

            rules = await prometheus.rules()
            assert {r["name"] for r in rules} == {name for name, _ in alert_expressions()}
            broken = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
            assert not broken, broken
            # A healthy single guardbot leads: the "no leader" alert is silent.
            firing = {r["name"] for r in rules if r["state"] == "firing"}
            assert "GuardbotNoLeader" not in firing
