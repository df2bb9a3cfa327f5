"""Every guest account has an end: the pure rules (core/expiry_rules.py)."""

from __future__ import annotations

from dataclasses import replace

from guardbot.core.actions import Deactivate, Suspend, Unsuspend
from guardbot.core.decision import SuspensionBegan, SuspensionEnded
from guardbot.core.expiry_rules import (
    Account,
    ExpiryRules,
    Step,
    decide_expiry,
    due,
    lift,
    next_step,
    why_not_ended,
)
from guardbot.core.observations import AccountEnded, AccountIdle, AccountSuspended

DAY = 86_400_000
RULES = ExpiryRules(
    enabled=True,
    guests_idle=30 * DAY,
    named_guests_idle=90 * DAY,
    suspended_for=30 * DAY,
    exempt=frozenset({"@guardbot:example.org", "@kiosk:example.org"}),
)
GUEST = Account("@1234:example.org", is_guest=True, admin=False, deactivated=False, last_active=0)
NAMED = Account(
    "@alice:example.org",
    is_guest=False,
    admin=False,
    deactivated=False,
    last_active=0,
    named_guest=True,
)


def test_an_idle_guest_is_deactivated_after_guests_idle() -> None:
    assert next_step(GUEST, RULES) == (Step.DEACTIVATE, 30 * DAY)
    assert due(GUEST, RULES, 30 * DAY - 1) is None
    assert due(GUEST, RULES, 30 * DAY) is Step.DEACTIVATE


def test_a_named_guest_is_suspended_first_then_deactivated_after_the_suspension() -> None:
    assert next_step(NAMED, RULES) == (Step.SUSPEND, 90 * DAY)
    suspended = replace(NAMED, suspended_at=91 * DAY)
    assert next_step(suspended, RULES) == (Step.DEACTIVATE, 121 * DAY)
    assert due(suspended, RULES, 120 * DAY) is None


def test_a_named_guest_with_no_device_left_is_suspended_after_guests_idle() -> None:
    gone = replace(NAMED, has_device=False)
    assert next_step(gone, RULES) == (Step.SUSPEND, 30 * DAY)


def test_never_an_admin_an_exempt_user_a_deactivated_account_or_a_password_owner() -> None:
    assert next_step(replace(GUEST, admin=True), RULES) is None
    assert next_step(replace(GUEST, user_id="@kiosk:example.org"), RULES) is None
    assert next_step(replace(GUEST, deactivated=True), RULES) is None
    owner = replace(NAMED, named_guest=False)  # set their own password
    assert next_step(owner, RULES) is None


def test_the_recheck_refuses_an_account_used_since_the_decision() -> None:
    action = Deactivate(GUEST.user_id, idle_since=0, erase=False)
    assert why_not_ended(GUEST, action, RULES, 31 * DAY) is None
    used = replace(GUEST, last_active=20 * DAY)
    assert why_not_ended(used, action, RULES, 31 * DAY) == "used since the decision"


def test_the_recheck_refuses_when_expiry_was_turned_off_or_the_step_is_not_due() -> None:
    action = Suspend(NAMED.user_id, idle_since=0)
    assert why_not_ended(NAMED, action, RULES, 91 * DAY) is None
    assert why_not_ended(NAMED, action, replace(RULES, enabled=False), 91 * DAY) == "expiry is off"
    # Suspended already: what is due is deactivation, not a second suspension.
    suspended = replace(NAMED, suspended_at=91 * DAY)
    assert why_not_ended(suspended, action, RULES, 92 * DAY) is not None
    deactivate = Deactivate(NAMED.user_id, 0, False, suspended_at=91 * DAY)
    assert why_not_ended(suspended, deactivate, RULES, 100 * DAY) is not None
    assert why_not_ended(suspended, deactivate, RULES, 122 * DAY) is None


def test_decisions_queue_the_step_with_erase_as_configured_and_record_suspensions() -> None:
    idle = AccountIdle(GUEST.user_id, "deactivate", 0, None, 31 * DAY)
    decision = decide_expiry(idle, replace(RULES, erase=True), 31 * DAY)
    assert decision.actions == (Deactivate(GUEST.user_id, 0, True, None),)
    assert decision.audit[0].user_id == GUEST.user_id
    suspend = decide_expiry(AccountIdle(NAMED.user_id, "suspend", 0, None, 1), RULES, 1)
    assert suspend.actions == (Suspend(NAMED.user_id, 0),)
    began = decide_expiry(AccountSuspended(NAMED.user_id, 5), RULES, 5)
    assert began.records == (SuspensionBegan(NAMED.user_id, 5),)
    ended = decide_expiry(AccountEnded(NAMED.user_id, 6), RULES, 6)
    assert ended.records == (SuspensionEnded(NAMED.user_id, "deactivated"),)


def test_the_same_idle_spell_is_one_action_however_often_it_is_seen() -> None:
    first = decide_expiry(AccountIdle(GUEST.user_id, "deactivate", 0, None, 1), RULES, 1)
    again = decide_expiry(AccountIdle(GUEST.user_id, "deactivate", 0, None, 2), RULES, 2)
    assert first.actions[0].key == again.actions[0].key


def test_a_password_set_lifts_only_a_suspension_guardbot_holds() -> None:
    assert lift(NAMED.user_id, None).actions == ()
    lifted = lift(NAMED.user_id, 5)
    assert lifted.actions == (Unsuspend(NAMED.user_id, 5),)
    assert lifted.records == (SuspensionEnded(NAMED.user_id, "they set a password"),)
