"""A real Prometheus (Debian's `prometheus` package) for the monitoring tests: started on
loopback with a scrape config and guardbot's alert rules, asked through its HTTP API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import pathlib
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.support.homeserver import free_port

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "guardbot-alerts.yml"
DASHBOARD = ROOT / "monitoring" / "guardbot-dashboard.json"

# A metric name followed by its label matchers, if any (PromQL functions are followed by "(",
# keywords like "by" and "on" by a space and "(", so neither matches).
_SELECTOR = re.compile(r"\b([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?(?!\s*\()")
_NOT_METRICS = {"sum", "max", "min", "count", "by", "on", "and", "or", "time", "vector", "le"}


def selectors(expr: str) -> list[str]:
    """The vector selectors of a PromQL expression ("up{job=\"guardbot\"}"), for checking that
    each names a metric (and labels) Prometheus has."""
    found = []
    for match in _SELECTOR.finditer(re.sub(r"\[[^\]]*\]", "", expr)):
        name, labels = match.group(1), match.group(2) or ""
        before = expr[: match.start()]
        if name in _NOT_METRICS or before.rstrip().endswith(("by (", "by(", "on(")):
            continue
        if not (name.startswith(("guardbot_", "synapse_")) or name == "up"):
            continue
        found.append(name + labels)
    return found


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) for every query of the shipped dashboard."""
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def alert_expressions() -> list[tuple[str, str]]:
    from ruamel.yaml import YAML

    groups = YAML(typ="safe").load(RULES.read_text())["groups"]
    return [(r["alert"], r["expr"]) for g in groups for r in g["rules"]]


class Prometheus:
    def __init__(self, workdir: pathlib.Path, targets: dict[str, tuple[str, str]]) -> None:
        """`targets`: job -> (host:port, metrics path)."""
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        scrape = [
            {
                "job_name": job,
                "metrics_path": path,
                "static_configs": [{"targets": [address]}],
            }
            for job, (address, path) in targets.items()
        ]
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES)],
            "scrape_configs": scrape,
        }
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(json.dumps(config))
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        binary = shutil.which("prometheus")
        assert binary, "prometheus is not installed"
        self.log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.url + "/-/ready") as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.2)
        raise RuntimeError("Prometheus did not become ready")

    async def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None
            self.log.close()

    async def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result; fails the test on a query Prometheus refuses."""
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + "/api/v1/query", params={"query": expr}) as resp:
                body = await resp.json()
        assert body.get("status") == "success", f"{expr}: {body}"
        return list(body["data"]["result"])

    async def rules(self) -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session:
            async with session.get(self.url + "/api/v1/rules") as resp:
                body = await resp.json()
        return [r for g in body["data"]["groups"] for r in g["rules"]]


@contextlib.asynccontextmanager
async def running_prometheus(
    workdir: pathlib.Path, targets: dict[str, tuple[str, str]]
) -> AsyncIterator[Prometheus]:
    prometheus = Prometheus(workdir, targets)
    await prometheus.start()
    try:
        yield prometheus
    finally:
        await prometheus.stop()
