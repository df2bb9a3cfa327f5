"""guardbot put together: every component built complete by its constructor, in the order the
flow runs, in named steps read top to bottom (mautrix's `Bridge.prepare` is the model). The
app, the tests and the benchmarks all wire through `wire`; they differ only in the config
they give it and, for tests, the database, homeserver client and clock they hand in.
"""

from __future__ import annotations

from dataclasses import dataclass

from mautrix.util.async_db import Database, Scheme

from guardbot import db, metrics
from guardbot.background import Wakeup
from guardbot.commands.management import Management
from guardbot.commands.reports import Reports
from guardbot.commands.room import RoomCommands
from guardbot.config import Config, parse_duration
from guardbot.core.actions import ACTIONS, ActionState, WaitingOn
from guardbot.core.clock import Clock
from guardbot.core.observations import DOOR_CALLBACKS
from guardbot.core.policy import ServerPolicy
from guardbot.db.lease_store import LeaseStore
from guardbot.expiry.account_carrier import ACCOUNT_ACTIONS, AccountCarrier
from guardbot.expiry.expiry_decider import ExpiryDecider
from guardbot.expiry.idle_accounts import IdleAccounts
from guardbot.guard.conversations import Conversations
from guardbot.guard.directory import Directory
from guardbot.guard.door import Door
from guardbot.guard.evaluator import Evaluator
from guardbot.guard.executor import Carrier, Executor
from guardbot.guard.facts import RoomFactSource
from guardbot.guard.guests import GuestOracle
from guardbot.guard.intake import AppserviceAPI
from guardbot.guard.room_carrier import ROOM_ACTIONS, RoomCarrier
from guardbot.leader import Leadership
from guardbot.matrix.client import Homeserver
from guardbot.named_guests.service import NamedGuestService


@dataclass
class Stores:
    database: Database
    decisions: db.DecisionStore
    lease: LeaseStore
    leadership: Leadership


@dataclass
class Facts:
    guests: GuestOracle
    directory: Directory
    rooms: RoomFactSource
    conversations: Conversations


@dataclass
class Ground:
    """What every later step builds on."""

    config: Config
    clock: Clock
    inbox_wakeup: Wakeup  # something to decide; also "the homeserver answers again"
    queue_wakeup: Wakeup  # something to carry out
    stores: Stores
    hs: Homeserver
    facts: Facts


@dataclass
class Expiry:
    """An account's end (config `expiry.*`): the pass, its decider and its carrier."""

    idle: IdleAccounts
    decider: ExpiryDecider
    carrier: AccountCarrier


@dataclass
class Parts:
    """Everything the running guardbot is made of."""

    clock: Clock
    server: ServerPolicy
    inbox_wakeup: Wakeup  # something to decide; also "the homeserver answers again"
    queue_wakeup: Wakeup  # something to carry out
    stores: Stores
    hs: Homeserver
    facts: Facts
    named_guests: NamedGuestService | None
    expiry: Expiry | None
    management: Management
    evaluator: Evaluator
    executor: Executor
    reports: Reports
    appservice: AppserviceAPI
    door: Door

    @property
    def decisions(self) -> db.DecisionStore:
        return self.stores.decisions

    @property
    def inbox(self) -> db.InboxStore:
        return self.stores.decisions.inbox

    @property
    def actions(self) -> db.ActionStore:
        return self.stores.decisions.actions


def wire(
    c: Config,
    *,
    database: Database | None = None,
    hs: Homeserver | None = None,
    clock: Clock | None = None,
) -> Parts:
    clock = clock or Clock()
    metrics.start_series(ACTIONS, ActionState, WaitingOn, DOOR_CALLBACKS)
    # Wake-ups first. The homeserver's "I answer again" is an observation (the inbox's
    # wake-up says so): its decision sweeps the listed rooms and makes due what waited.
    inbox_wakeup, queue_wakeup = Wakeup(), Wakeup()
    stores = prepare_db(c, database, clock)
    hs = hs or prepare_homeserver(c, clock, inbox_wakeup, stores.leadership)
    facts = prepare_facts(c, hs, stores, clock, inbox_wakeup)
    g = Ground(c, clock, inbox_wakeup, queue_wakeup, stores, hs, facts)
    named_guests = prepare_named_guests(g)
    expiry = prepare_expiry(g, named_guests)
    server = c.server_policy()
    management, evaluator = prepare_deciders(g, server, named_guests, expiry)
    reports, executor = prepare_loops(g, named_guests, expiry)
    appservice, door = prepare_listeners(g)
    return Parts(
        clock=clock,
        server=server,
        inbox_wakeup=inbox_wakeup,
        queue_wakeup=queue_wakeup,
        stores=stores,
        hs=hs,
        facts=facts,
        named_guests=named_guests,
        expiry=expiry,
        management=management,
        evaluator=evaluator,
        executor=executor,
        reports=reports,
        appservice=appservice,
        door=door,
    )


def prepare_db(c: Config, database: Database | None, clock: Clock) -> Stores:
    database = database or db.create(c["database"])
    lease = LeaseStore(database)
    leadership = Leadership(
        lease, clock, lease=float(c["leader.lease"]), alone=database.scheme == Scheme.SQLITE
    )
    return Stores(database, db.DecisionStore(database), lease, leadership)


def prepare_homeserver(
    c: Config, clock: Clock, inbox_wakeup: Wakeup, leadership: Leadership
) -> Homeserver:
    return Homeserver(
        c["homeserver.address"],
        c["appservice.as_token"],
        c.bot_user_id,
        on_back=inbox_wakeup.homeserver_back,
        clock=clock,
        may_write=leadership.may_act,  # a process that may no longer lead writes nothing
    )


def prepare_facts(
    c: Config, hs: Homeserver, stores: Stores, clock: Clock, inbox_wakeup: Wakeup
) -> Facts:
    guests = GuestOracle(
        hs,
        c["homeserver.domain"],
        set(c["bot.exempt_users"]),
        clock,
        admin_recheck=float(c["bot.admin_recheck"]),
        named_guests=stores.decisions.named_guests if c.link_only else None,
    )
    directory = Directory(
        hs,
        stores.decisions.rooms,
        clock,
        inbox_wakeup,
        poll_interval=c["directory.poll_interval"],
        page_size=c["directory.page_size"],
        recheck_every=float(c["directory.recheck_every"]),
        guest_free=c["policy.guest_free_rooms"],
    )
    rooms = RoomFactSource(c.server_policy(), directory, stores.decisions.settings)
    # Rooms where guardbot talks with people (the management room, named guests' DMs): every
    # message there reaches the evaluator, not only `!guardbot` commands.
    conversations = Conversations([c["management_room"]])
    return Facts(guests, directory, rooms, conversations)


def prepare_named_guests(g: Ground) -> NamedGuestService | None:
    if not g.config["pwlu.enabled"]:
        return None
    guests = g.facts.guests
    return NamedGuestService(
        g.config,
        g.hs,
        g.stores.database,
        g.facts.conversations,
        g.clock,
        g.inbox_wakeup,
        is_admin=lambda: guests.admin,
    )


def prepare_expiry(g: Ground, named_guests: NamedGuestService | None) -> Expiry | None:
    c, decisions = g.config, g.stores.decisions
    rules = c.expiry_rules()
    if not rules.enabled:
        return None
    idle = IdleAccounts(
        hs=g.hs,
        rules=rules,
        inbox=decisions.inbox,
        named_guests=decisions.named_guests,
        suspensions=decisions.suspensions,
        clock=g.clock,
        inbox_wakeup=g.inbox_wakeup,
        every=parse_duration(c["expiry.check_every"]),
    )
    carrier = AccountCarrier(
        hs=g.hs,
        rules=rules,
        store=decisions.actions,
        named_guests=decisions.named_guests,
        suspensions=decisions.suspensions,
        accounts=named_guests.accounts if named_guests else None,
        clock=g.clock,
    )
    return Expiry(idle, ExpiryDecider(rules, decisions.suspensions), carrier)


def prepare_deciders(
    g: Ground,
    server: ServerPolicy,
    named_guests: NamedGuestService | None,
    expiry: Expiry | None,
) -> tuple[Management, Evaluator]:
    c, hs, facts, clock = g.config, g.hs, g.facts, g.clock
    bot, management_room = c.bot_user_id, c["management_room"]
    decisions = g.stores.decisions
    management = Management(
        room_id=management_room,
        bot_user_id=bot,
        hs=hs,
        rooms=facts.rooms,
        directory=facts.directory,
        guests=facts.guests,
        actions=decisions.actions,
        inbox=decisions.inbox,
        audit=decisions.audit,
        lease=g.stores.lease,
        named_guests=named_guests.admin if named_guests else None,
        expiry=expiry.idle if expiry else None,
        clock=clock,
    )
    room_commands = RoomCommands(
        bot_user_id=bot,
        management_room=management_room,
        server=server,
        rooms=facts.rooms,
        hs=hs,
        audit=decisions.audit,
    )
    evaluator = Evaluator(
        server=server,
        bot_user_id=bot,
        management_room=management_room,
        decisions=decisions,
        rooms=facts.rooms,
        guests=facts.guests,
        hs=hs,
        deciders=[room_commands, management],
        named_guests=named_guests.decider if named_guests else None,
        expiry=expiry.decider if expiry else None,
        remember=[
            facts.rooms.remember,
            facts.conversations.remember,
            *([named_guests.remember] if named_guests else []),
        ],
        clock=clock,
        wakeup=g.inbox_wakeup,
        queue_wakeup=g.queue_wakeup,
    )
    return management, evaluator


def prepare_loops(
    g: Ground, named_guests: NamedGuestService | None, expiry: Expiry | None
) -> tuple[Reports, Executor]:
    c, decisions = g.config, g.stores.decisions
    reports = Reports(
        c["management_room"], decisions.actions, decisions.inbox, g.inbox_wakeup, g.clock
    )
    rooms = RoomCarrier(
        hs=g.hs, store=decisions.actions, guests=g.facts.guests, rooms=g.facts.rooms, clock=g.clock
    )
    carriers: dict[type, Carrier] = {kind: rooms for kind in ROOM_ACTIONS}
    if named_guests is not None:
        carriers |= named_guests.carriers
    if expiry is not None:
        carriers |= {kind: expiry.carrier for kind in ACCOUNT_ACTIONS}
    executor = Executor(
        hs=g.hs,
        store=decisions.actions,
        guests=g.facts.guests,
        rooms=g.facts.rooms,
        clock=g.clock,
        wakeup=g.queue_wakeup,
        inbox_wakeup=g.inbox_wakeup,
        auto_join=bool(c["bot.auto_join_listed_rooms"]),
        carriers=carriers,
    )
    return reports, executor


def prepare_listeners(g: Ground) -> tuple[AppserviceAPI, Door]:
    """What the homeserver calls: the appservice API (transactions) and the door."""
    c, facts, decisions = g.config, g.facts, g.stores.decisions
    appservice = AppserviceAPI(
        c["appservice.hs_token"],
        c["homeserver.domain"],
        c.bot_user_id,
        decisions.inbox,
        g.inbox_wakeup,
        facts.conversations,
        g.clock,
        named_guests_too=c.link_only,
    )
    hint = c["antispam.account_hint"] if c["pwlu.enabled"] else ""
    door = Door(
        token=c["antispam.token"],
        domain=c["homeserver.domain"],
        rooms=facts.rooms,
        inbox=decisions.inbox,
        inbox_wakeup=g.inbox_wakeup,
        guests=facts.guests,
        settings=decisions.settings,
        clock=g.clock,
        timeout=float(c["antispam.timeout"]),
        refusal=c["antispam.refusal"].replace("{account_hint}", hint),
    )
    return appservice, door
