"""What a named guest says or does in their DM with guardbot: "stop" ends the reminders; leaving
the DM means one invitation back with the next reminder, and a second leave ends them."""

from __future__ import annotations

from dataclasses import dataclass

from guardbot.core.actions import Notice
from guardbot.core.decision import Decision, DmLeft, NagsEnded
from guardbot.core.observations import ConversationMember, Message
from guardbot.core.reminders import after_a_leave
from guardbot.db.named_guests import ACTIVE, PwluRow, PwluStore
from guardbot.guard.conversations import Conversations
from guardbot.matrix.client import Homeserver

STOP_ANSWER = (
    "OK, no more reminders from me. Your account keeps working; you can still set a password"
    " from the link in a reminder while it lasts."
)


def is_stop(body: str) -> bool:
    return body.strip().strip(".!?").strip().lower() in ("stop", "!stop", "unsubscribe")


@dataclass(frozen=True)
class DmFacts:
    row: PwluRow
    deactivated: bool = False  # for a leave: the account is gone


class NagReplies:
    def __init__(self, store: PwluStore, hs: Homeserver, conversations: Conversations) -> None:
        self.store = store
        self.hs = hs
        self.conversations = conversations

    async def gather(self, obs: Message | ConversationMember) -> DmFacts | None:
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

    def decide(self, obs: Message | ConversationMember, facts: DmFacts, now: int) -> Decision:
        user_id = facts.row.user_id
        if isinstance(obs, Message):
            # The answer is queued with the decision: sent once, even across a crash.
            reply = Notice(obs.room_id, STOP_ANSWER, STOP_ANSWER, cause=obs.event_id)
            return Decision(actions=(reply,), records=(NagsEnded(user_id, "asked to stop"),))
        if facts.deactivated:
            return Decision(records=(NagsEnded(user_id, "deactivated"),))
        ended = after_a_leave(facts.row.dm_reinvited)
        if ended:
            return Decision(records=(NagsEnded(user_id, ended),))
        return Decision(records=(DmLeft(user_id),))  # the next reminder invites them back
