"""guardbot's metrics (guardbot/metrics.py), as an admin's scrape sees them: every labelled
series there from the start, at 0, so an alert on one that has not moved yet finds it."""

from __future__ import annotations

import asyncio
import urllib.request

from guardbot import metrics
from tests.support.homeserver import free_port


async def test_every_labelled_series_is_scraped_at_zero_from_the_start() -> None:
    port = free_port()
    metrics.start_series(["TestKind"], ["done", "failed"], ["homeserver"], ["test_callback"])
    metrics.serve(f"127.0.0.1:{port}")

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
            return resp.read().decode()

    body = await asyncio.to_thread(scrape)
    for series in (
        'guardbot_actions_total{kind="TestKind",state="done"} 0.0',
        'guardbot_actions_total{kind="TestKind",state="failed"} 0.0',
        'guardbot_actions_retried_total{cause="homeserver",kind="TestKind"} 0.0',
        'guardbot_door_answers_total{answer="refused",callback="test_callback"} 0.0',
    ):
        name, labels = series.split("{", 1)
        wanted = dict(p.split("=") for p in labels.split("}")[0].split(","))
        found = [
            line
            for line in body.splitlines()
            if line.startswith(name + "{") and all(f"{k}={v}" in line for k, v in wanted.items())
        ]
        assert found and found[0].endswith(" 0.0"), series
