"""The audit log (db/audit_store.py), on every supported database."""

from __future__ import annotations

from guardbot.core.actions import ActionState
from guardbot.core.decision import (
    AuditRecord,
)
from tests.support.stores import OTHER, ROOM, Stores

DONE, PENDING, SKIPPED = ActionState.DONE, ActionState.PENDING, ActionState.SKIPPED


async def test_only_what_was_really_done_counts_as_done(stores: Stores) -> None:
    for state in (DONE, ActionState.DRY_RUN, SKIPPED, DONE):
        await stores.decisions.audit.add(
            AuditRecord(
                1,
                "guardbot",
                "Kick",
                ROOM,
                "@1:example.org",
                "why",
                f"{state}: x",
                dry_run=state is ActionState.DRY_RUN,
                state=state,
            )
        )
    assert await stores.decisions.audit.count_done("Kick", room_id=ROOM) == 2
    assert await stores.decisions.audit.count_done("Kick", room_id=OTHER) == 0
