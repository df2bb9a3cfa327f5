"""Decisions on an account's end (expiry/expiry_decider.py): what the expiry pass and the
carrier found, decided by core/expiry_rules.py, and a suspended named guest's password lifting
the suspension. Gathering reads when guardbot suspended them; deciding is pure."""

from __future__ import annotations

from guardbot import db
from guardbot.core.actions import Deactivate, Suspend, Unsuspend
from guardbot.core.decision import SuspensionBegan, SuspensionEnded
from guardbot.core.expiry_rules import ExpiryRules
from guardbot.core.observations import (
    AccountEnded,
    AccountIdle,
    AccountSuspended,
    PasswordFound,
    PasswordSet,
)
from guardbot.db.suspension_store import SuspensionStore
from guardbot.expiry.expiry_decider import ExpiryDecider

ANN = "@ann:example.org"
RULES = ExpiryRules(enabled=True, erase=True)


def decider(database: db.Database) -> ExpiryDecider:
    return ExpiryDecider(RULES, SuspensionStore(database))


async def test_an_idle_account_is_suspended_or_deactivated_as_found(database: db.Database) -> None:
    decide = decider(database).decide
    suspend = decide(AccountIdle(ANN, "suspend", 100, None, 9_000), None, 9_000)
    assert suspend.actions == (Suspend(ANN, 100),)
    assert [(e.what, e.user_id) for e in suspend.audit] == [("decide Suspend", ANN)]
    end = decide(AccountIdle(ANN, "deactivate", 100, 5_000, 9_000), None, 9_000)
    assert end.actions == (Deactivate(ANN, 100, erase=True, suspended_at=5_000),)
    assert decide(AccountSuspended(ANN, 7), None, 7).records == (SuspensionBegan(ANN, 7),)
    assert decide(AccountEnded(ANN, 8), None, 8).records == (SuspensionEnded(ANN, "deactivated"),)


async def test_a_password_lifts_only_a_suspension_guardbot_holds(database: db.Database) -> None:
    expiry = decider(database)
    password = PasswordSet(ANN, "on the claim page", 9_000)
    assert await expiry.gather(password) is None
    assert expiry.decide(password, None, 9_000).actions == ()
    await expiry.suspensions.began(ANN, 5_000)
    since = await expiry.gather(password)
    assert since == 5_000
    lifted = expiry.decide(password, since, 9_000)
    assert lifted.actions == (Unsuspend(ANN, 5_000),)
    assert lifted.records == (SuspensionEnded(ANN, "they set a password"),)
    gone = PasswordFound(ANN, deactivated=True, at=9_000)
    assert expiry.decide(gone, since, 9_000).actions == ()  # deactivated: nothing to lift
