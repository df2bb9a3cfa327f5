"""11. Expiry: one pass over 100,000 accounts through the admin API (expiry/idle_accounts.py),
with nothing due and with 1 % due: admin calls, time, and the memory the pass allocates. The
stand-in serves each page of accounts precomputed (the tests' scripted homeserver, its user
list answered from bytes made before the clock starts), so the figures are guardbot's."""

from __future__ import annotations

import json
import time
import tracemalloc

from aiohttp import web

from guardbot import db
from guardbot.background import Wakeup
from guardbot.core.clock import Clock
from guardbot.core.expiry_rules import ExpiryRules
from guardbot.db.named_guest_store import NamedGuestStore
from guardbot.db.suspension_store import SuspensionStore
from guardbot.expiry.idle_accounts import PAGE, IdleAccounts
from guardbot.matrix.client import Homeserver
from tests.support.fake_homeserver import Call, FakeHomeserver

from .common import Options, Row, database_url, started_database

DOMAIN = "example.org"
DAY_MS = 86_400_000


class AccountsHomeserver(FakeHomeserver):
    """N accounts, a third of them guests; `due` of the guests idle for 60 days, the rest
    seen just now."""

    def __init__(self, accounts: int, due: int, now: int) -> None:
        super().__init__(domain=DOMAIN, bot_user_id=f"@guardbot:{DOMAIN}")
        users = []
        for n in range(accounts):
            guest = n % 3 == 0
            idle = guest and n // 3 < due
            users.append(
                {
                    "name": f"@{n}:{DOMAIN}" if guest else f"@user{n}:{DOMAIN}",
                    "is_guest": guest,
                    "admin": False,
                    "deactivated": False,
                    "user_type": None,
                    "creation_ts": now - 90 * DAY_MS,
                    "last_seen_ts": now - 60 * DAY_MS if idle else now,
                }
            )
        users.sort(key=lambda u: str(u["name"]))
        self.pages: dict[int, bytes] = {}
        for start in range(0, len(users), PAGE):
            body: dict[str, object] = {"users": users[start : start + PAGE], "total": len(users)}
            if start + PAGE < len(users):
                body["next_token"] = str(start + PAGE)
            self.pages[start] = json.dumps(body).encode()

    async def _users_page(self, call: Call) -> web.Response:
        body = self.pages.get(int(call.query.get("from", 0)), b'{"users": []}')
        return web.Response(body=body, content_type="application/json")


async def one_pass(accounts: int, due: int, database_kind: str, postgres: str) -> Row:
    now = Clock().now_ms()
    fake = AccountsHomeserver(accounts, due, now)
    await fake.start()
    async with database_url(database_kind, postgres) as url, started_database(url) as database:
        hs = Homeserver(fake.url, "as-token", fake.bot_user_id)
        stores = db.DecisionStore(database)
        idle = IdleAccounts(
            hs=hs,
            rules=ExpiryRules(enabled=True),
            inbox=stores.inbox,
            named_guests=NamedGuestStore(database),
            suspensions=SuspensionStore(database),
            clock=Clock(),
            inbox_wakeup=Wakeup(),
            every=3600,
        )
        tracemalloc.start()
        started = time.perf_counter()
        await idle.step()
        took = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        observed = await stores.inbox.size()
        await hs.close()
    calls = len(fake.called("users_page"))
    await fake.close()
    expected_calls = -(-accounts // PAGE)
    share = f"{due / accounts:.0%}" if due else "nothing"
    return Row(
        f"11 expiry pass, {accounts:,} accounts, {share} due ({database_kind})",
        f"{took:.2f} s, {calls} admin calls, {peak / 1e6:.0f} MB peak, {observed} steps due",
        f"{expected_calls} pages of {PAGE}",
        "",
        f"{expected_calls} calls, {due} due",
        calls == expected_calls and observed == due,
    )


async def run(opts: Options) -> list[Row]:
    accounts = 10_000 if opts.quick else 100_000
    kinds = ["sqlite", "postgres"] if opts.postgres else ["sqlite"]
    rows = []
    for kind in kinds:
        rows.append(await one_pass(accounts, 0, kind, opts.postgres))
        rows.append(await one_pass(accounts, accounts // 100, kind, opts.postgres))
    return rows
