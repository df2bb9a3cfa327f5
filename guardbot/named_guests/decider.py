"""Decisions on a named guest: what they say or do in their DM ("stop" ends the reminders;
leaving the DM means one invitation back with the next reminder, and a second leave ends
them), and the events of their life the timer, sign-up and the executor report (a reminder
due, a reminder gone, a password found or set, a guest's rooms to carry over), decided by
core/reminders.py. Gathering reads; deciding is pure."""

from __future__ import annotations

from dataclasses import dataclass

from guardbot.core import reminders
from guardbot.core.actions import Notice
from guardbot.core.decision import Decision, DmLeft, RemindersEnded
from guardbot.core.observations import (
    ConversationMember,
    Message,
    NamedGuestObservation,
    Observation,
)
from guardbot.core.reminders import NamedGuest, ReminderRules, after_a_leave
from guardbot.db.named_guest_store import ACTIVE, NamedGuestRow, NamedGuestStore
from guardbot.guard.conversations import Conversations
from guardbot.matrix.client import Homeserver
from guardbot.named_guests.passwords import KeyRing

STOP_ANSWER = (
    "OK, no more reminders from me. Your account keeps working; you can still set a password"
    " from the link in a reminder while it lasts."
)


def is_stop(body: str) -> bool:
    return body.strip().strip(".!?").strip().lower() in ("stop", "!stop", "unsubscribe")


@dataclass(frozen=True)
class DmFacts:
    row: NamedGuestRow
    deactivated: bool = False  # for a leave: the account is gone


@dataclass(frozen=True)
class LifeFacts:
    guest: NamedGuest | None


class NamedGuestDecider:
    def __init__(
        self,
        store: NamedGuestStore,
        hs: Homeserver,
        conversations: Conversations,
        keys: KeyRing,
        rules: ReminderRules,
    ) -> None:
        self.store = store
        self.hs = hs
        self.conversations = conversations
        self.keys = keys
        self.rules = rules

    async def gather(self, obs: Observation) -> DmFacts | LifeFacts | None:
        if isinstance(obs, NamedGuestObservation):
            row = await self.store.get(obs.user_id)
            return LifeFacts(None if row is None else self._named_guest(row))
        if not isinstance(obs, Message | ConversationMember):
            return None
        if obs.room_id not in self.conversations:
            return None
        if isinstance(obs, Message):
            if not is_stop(obs.body):
                return None
            sender = obs.sender
        else:
            if obs.membership not in ("leave", "ban"):
                return None
            sender = obs.user_id
        row = await self.store.by_dm(obs.room_id)
        if row is None or sender != row.user_id or row.state != ACTIVE:
            return None
        if isinstance(obs, ConversationMember):
            return DmFacts(row, deactivated=bool(await self.hs.deactivated(row.user_id)))
        return DmFacts(row)

    def _named_guest(self, row: NamedGuestRow) -> NamedGuest:
        return NamedGuest(
            user_id=row.user_id,
            active=row.state == ACTIVE,
            created_at=row.created_at,
            nags_sent=row.nags_sent,
            sending=row.sending,
            next_nag_at=row.next_nag_at,
            secret_known=self.keys.knows(row.key_id),
        )

    def decide(self, obs: Observation, facts: DmFacts | LifeFacts, now: int) -> Decision:
        if isinstance(facts, LifeFacts):
            assert isinstance(obs, NamedGuestObservation)
            return reminders.decide(obs, facts.guest, self.rules, now)
        user_id = facts.row.user_id
        if isinstance(obs, Message):
            # The answer is queued with the decision: sent once, even across a crash.
            reply = Notice(obs.room_id, STOP_ANSWER, STOP_ANSWER, cause=obs.event_id)
            return Decision(actions=(reply,), records=(RemindersEnded(user_id, "asked to stop"),))
        if facts.deactivated:
            return Decision(records=(RemindersEnded(user_id, "deactivated"),))
        ended = after_a_leave(facts.row.dm_reinvited)
        if ended:
            return Decision(records=(RemindersEnded(user_id, ended),))
        return Decision(records=(DmLeft(user_id),))  # the next reminder invites them back
