"""The doctor's homeserver checks, written against Synapse (1.163) and read from its source.

Read-only probes wherever Synapse has one; the two that are not say so on their line:
- guests: `allow_guest_access` is read in one place only, guest registration, right before it
  creates the account, so the probe registers one guest (its token is discarded; guest tokens
  cannot be revoked).
- directory: `room_list_publication_rules` is checked only after the room is known and the user
  may edit its entry, and a pass publishes it. If rooms are listed already, that answers it
  read-only; otherwise guardbot creates a private room, publishes and unpublishes it, and
  leaves it (purged when guardbot is a server admin).
"""

from __future__ import annotations

import secrets

from guardbot.config import Config
from guardbot.matrix.client import Homeserver, HomeserverError, q
from guardbot.tools.doctor.report import Report

# What Synapse itself says when enable_room_list_search is false (handlers/directory.py).
SYNAPSE_NO_PUBLISHING = "This user is not permitted to publish rooms to the room list"
# A guest-shaped ID nobody has: Synapse numbers guests from 1 up.
GUEST_SAMPLE = "987654321987"


class HomeserverChecks:
    def __init__(
        self,
        config: Config,
        hs: Homeserver,
        report: Report,
        *,
        fix: bool,
        read_only: bool,
        regen: str,
        command: str,
    ) -> None:
        self.c = config
        self.hs = hs
        self.report = report
        self.fix = fix
        self.read_only = read_only
        self.regen = regen  # how to write a new registration, for fix lines
        self.command = command  # how this doctor was run, for "--fix" hints
        self.bot = config.bot_user_id
        self.registered = False
        self.admin = False

    async def reachable(self) -> bool:
        address = self.c["homeserver.address"]
        try:
            await self.hs.versions()
        except HomeserverError as e:
            self.report.fail(
                "homeserver",
                f"cannot reach {address} ({e.error if e.status == 0 else e})",
                "check homeserver.address and that the homeserver is running",
            )
            return False
        try:
            version = (await self.hs.request("GET", "/_synapse/admin/v1/server_version")).get(
                "server_version"
            )
        except HomeserverError:
            version = None
        what = f"Synapse {version}" if version else "not Synapse? the checks below assume Synapse"
        self.report.ok("homeserver", f"{address} answers ({what})")
        return True

    async def appservice_known(self, registration_path: str) -> bool:
        """The as_token works: the homeserver loaded a registration with it."""
        name = "appservice"
        try:
            who = await self.hs.request("GET", "/_matrix/client/v3/account/whoami")
        except HomeserverError as e:
            if e.status == 401:
                self.report.fail(
                    name,
                    "the homeserver does not know appservice.as_token",
                    f"add {registration_path} to app_service_config_files in homeserver.yaml and"
                    " restart the homeserver (after `-g --new-tokens` too), then guardbot",
                )
            else:
                self.report.fail(name, f"whoami with the as_token failed ({e})", "see the error")
            return False
        if who.get("user_id") != self.bot:
            self.report.fail(
                name,
                f"the homeserver's registration for this as_token has sender"
                f" {who.get('user_id')}, but the config's bot is {self.bot}",
                self.regen,
            )
            return False
        self.report.ok(name, f"the homeserver loaded guardbot's registration (sender {self.bot})")
        return True

    async def bot_user(self) -> None:
        """Registered? (--fix registers it.) Server admin? (the fix is a curl command)"""
        try:
            data = await self.hs.request("GET", f"/_synapse/admin/v1/users/{q(self.bot)}/admin")
            self.admin = bool(data.get("admin"))
        except HomeserverError as e:
            if e.status not in (401, 403, 404):
                self.report.fail("bot user", f"could not check {self.bot} ({e})", "see the error")
                return
        self.registered = self.admin or await self._has_profile()
        if not self.registered and self.fix:
            try:
                await self.hs.register_bot()
            except HomeserverError as e:
                self.report.fail("bot user", f"registering {self.bot} failed ({e})", "see error")
                return
            self.registered = True
            self.report.ok("bot user", f"{self.bot} was not registered; registered it (--fix)")
        elif not self.registered:
            self.report.fail(
                "bot user",
                f"{self.bot} is not registered on the homeserver",
                f"run `{self.command} --fix`, which registers it (guardbot also does at start)",
            )
        else:
            self.report.ok("bot user", f"{self.bot} is registered")
        if self.admin:
            self.report.ok("bot admin", f"{self.bot} is a server admin")
            return
        first = "" if self.registered else "register it (above), then "
        self.report.fail(
            "bot admin",
            f"{self.bot} is not a server admin, so it cannot ask who is a guest",
            f"{first}as an existing admin run: curl -X PUT -H 'Authorization: Bearer <admin access"
            f" token>' -d '{{\"admin\": true}}'"
            f" {self.hs.address}/_synapse/admin/v2/users/{self.bot}",
        )

    async def _has_profile(self) -> bool:
        # Synapse gives every registered user a profile row (displayname = localpart) and
        # answers 404 "No row found" without one. Read-only, unlike trying to register.
        try:
            await self.hs.request("GET", f"/_matrix/client/v3/profile/{q(self.bot)}")
        except HomeserverError as e:
            if e.status == 404:
                return False
            raise
        return True

    async def guests(self) -> None:
        name = "guests"
        if self.read_only:
            self.report.skip(name, "--read-only (Synapse's only test registers a guest)")
            return
        path = "/_matrix/client/v3/register"
        try:
            data = await self.hs.request("POST", path, {}, query={"kind": "guest"}, auth=False)
        except HomeserverError as e:
            if e.status == 403:
                self.report.fail(
                    name,
                    f"the homeserver does not allow guests ({e.error})",
                    "guardbot has nothing to do without guests; to allow them set"
                    " allow_guest_access: true in homeserver.yaml and restart the homeserver",
                )
            elif e.status == 429:
                self.report.skip(name, "the homeserver rate-limited guest registration; retry")
            else:
                self.report.fail(name, f"guest registration failed ({e})", "see the error")
            return
        self.report.ok(
            name,
            f"the homeserver allows guests (probe: registered guest {data.get('user_id')}"
            " and discarded its token; Synapse has no read-only way to tell)",
        )
        token = data.get("access_token")
        if isinstance(token, str):
            await self._auto_joined(token)

    async def _auto_joined(self, guest_token: str) -> None:
        """Synapse puts new guests into auto_join_rooms (auto_join_rooms_for_guests defaults
        to true): the probe guest's rooms are where every guest lands."""
        name = "guest auto-join"
        rooms = await self.hs.joined_rooms(guest_token)
        free = set(self.c["policy.guest_free_rooms"])
        for alias in [r for r in free if r.startswith("#")]:
            try:
                free.add(await self.hs.resolve_alias(alias))
            except HomeserverError:
                pass
        open_to_guests = sorted(r for r in rooms if r not in free)
        if not rooms:
            self.report.ok(name, "new guests are put into no room")
        elif not open_to_guests:
            self.report.ok(name, f"new guests are put into {', '.join(rooms)}, all guest-free")
        else:
            self.report.note(
                name,
                f"new guests are put into {', '.join(open_to_guests)} (auto_join_rooms):"
                " guests there can see who else is in them, in a server-wide room every user",
                "if guests do not belong there, add them to policy.guest_free_rooms, or set"
                " auto_join_rooms_for_guests: false in homeserver.yaml",
            )

    async def user_type(self, user_type: str) -> None:
        """pwlu.user_type: does the homeserver take it? Tried on guardbot's own account, whose
        type is put back at once (Synapse has no read-only way to ask)."""
        name = "user type"
        if self.read_only:
            self.report.skip(name, "--read-only (the check sets a user_type, then restores it)")
            return
        if not self.admin:
            self.report.skip(name, "guardbot is not a server admin (setting a user_type needs it)")
            return
        before = (await self.hs.admin_user(self.bot) or {}).get("user_type")
        try:
            await self.hs.set_user_type(self.bot, user_type)
        except HomeserverError as e:
            if e.status != 400:
                raise
            self.report.fail(
                name,
                f"the homeserver refuses the user_type {user_type!r} ({e.error})",
                f"add it to homeserver.yaml (Synapse 1.132 or later): user_types:"
                f" {{extra_user_types: [{user_type}]}}, and restart the homeserver; or empty"
                " pwlu.user_type",
            )
            return
        await self.hs.set_user_type(self.bot, before)
        self.report.ok(name, f"the homeserver accepts the user_type {user_type!r}")

    async def user_registration(self) -> None:
        """Named guests need the homeserver to let clients register. A bare /register asks
        for nothing but the first step of its auth flows (no account is made)."""
        name = "sign-up"
        try:
            await self.hs.request("POST", "/_matrix/client/v3/register", {}, auth=False)
        except HomeserverError as e:
            flows = e.body.get("flows")
            if e.status == 401 and isinstance(flows, list):
                stages = sorted(
                    {s for f in flows if isinstance(f, dict) for s in f.get("stages", [])}
                )
                self.report.ok(
                    name,
                    "the homeserver lets clients register, as named guests need"
                    f" (its steps: {', '.join(stages) or 'none'})",
                )
                return
            if e.status == 403:
                self.report.fail(
                    name,
                    f"the homeserver refuses registration ({e.error}); pwlu.enabled needs it",
                    "set enable_registration: true and enable_registration_without_verification:"
                    " true (or a verification flow, e.g. registration_requires_token: true) in"
                    " homeserver.yaml and restart it",
                )
                return
            self.report.fail(name, f"unexpected answer to a registration ({e})", "see the error")
            return
        self.report.fail(
            name, "the homeserver registered an account without any step", "see its config"
        )

    async def client_addresses(self) -> None:
        """Does the homeserver count a named guest's registration against the person's own
        address? guardbot forwards it (X-Forwarded-For); only the homeserver can say whether
        it believes it: a probe guest is registered and seen from a documentation address,
        and the admin API's whois tells which address the homeserver recorded."""
        name = "client addresses"
        if self.read_only:
            self.report.skip(name, "--read-only (the check registers a guest)")
            return
        if not self.admin:
            self.report.skip(name, "needs guardbot to be a server admin (it reads whois)")
            return
        probe = f"192.0.2.{secrets.randbelow(254) + 1}"  # TEST-NET-1: nobody's address
        path = "/_matrix/client/v3/register"
        query = {"kind": "guest"}
        guest = await self.hs.request("POST", path, {}, query=query, auth=False, on_behalf_of=probe)
        user_id, token = str(guest.get("user_id")), str(guest.get("access_token"))
        whoami = "/_matrix/client/v3/account/whoami"
        await self.hs.request("GET", whoami, token=token, on_behalf_of=probe)
        whois = await self.hs.request("GET", f"/_synapse/admin/v1/whois/{q(user_id)}")
        seen = sorted(
            {
                str(connection.get("ip"))
                for device in (whois.get("devices") or {}).values()
                for session in device.get("sessions") or []
                for connection in session.get("connections") or []
            }
        )
        what = f"probe: guest {user_id} registered on behalf of {probe}, its token discarded"
        if probe in seen:
            self.report.ok(
                name,
                "the homeserver counts each named guest's registration against their own"
                f" address: it believes guardbot's X-Forwarded-For ({what})",
            )
            return
        self.report.fail(
            name,
            f"the homeserver saw guardbot's address ({', '.join(seen) or 'none'}), not the"
            " person's: every named guest's registration counts against guardbot's one"
            f" address (Synapse's rc_registration: 3, then one every 6 s) ({what})",
            "give guardbot a Synapse listener that believes forwarded addresses, for guardbot"
            " alone: in homeserver.yaml a listener on 127.0.0.1 (another port) with"
            " x_forwarded: true and resources [client], and homeserver.address pointing at"
            ' it (docs/named-guests.md, "Each person\'s own limits")',
        )

    async def directory(self) -> None:
        """Can rooms be listed? Read-only first; a probe room only if nothing is listed."""
        name = "directory"
        missing = f"!guardbot-doctor-{secrets.token_hex(6)}:{self.c['homeserver.domain']}"
        try:
            # Synapse refuses a switched-off directory before it looks the room up, and an
            # unknown room before it reads the rules: this request changes nothing.
            await self._publish(missing, "public")
        except HomeserverError as e:
            if e.status == 403 and e.error == SYNAPSE_NO_PUBLISHING:
                self.report.fail(
                    name,
                    f"the homeserver lets no one publish rooms ({e.error}):"
                    " enable_room_list_search is false or a module forbids it",
                    "nothing is ever listed, so guardbot has nothing to do; set"
                    " enable_room_list_search: true in homeserver.yaml if you want a directory",
                )
                return
            if e.status == 403:
                # Not Synapse's own words: a module refused (the door's, with a token it does
                # not accept, says "antispam"); name it, never a setting it is not.
                door = "antispam" in e.error.lower()
                self.report.fail(
                    name,
                    f"a homeserver module refused to publish a room ({e.errcode}: {e.error})",
                    "see the door line: the module's token must be guardbot's antispam.token"
                    if door
                    else "see that module's configuration in homeserver.yaml",
                )
                return
            if e.status != 400 and e.status != 404:
                self.report.fail(name, f"directory probe failed ({e})", "see the error")
                return
        page = await self.hs.public_rooms_page(1, None)
        listed = page.get("total_room_count_estimate") or len(page.get("chunk") or [])
        if listed:
            self.report.ok(
                name,
                f"{listed} room(s) listed in the room directory, so"
                " room_list_publication_rules let rooms be listed",
            )
            return
        if self.read_only:
            self.report.skip(name, "no room is listed and --read-only forbids a probe room")
            return
        if not self.registered:
            self.report.skip(name, f"no room is listed; the probe room needs {self.bot} registered")
            return
        await self._probe_room(name)

    async def _publish(self, room_id: str, visibility: str) -> None:
        path = f"/_matrix/client/v3/directory/list/room/{q(room_id)}"
        await self.hs.request("PUT", path, {"visibility": visibility})

    async def _probe_room(self, name: str) -> None:
        # Invite-only and closed to guests, so nobody can get in while it is listed for a moment.
        closed = {"type": "m.room.guest_access", "content": {"guest_access": "forbidden"}}
        body = {
            "preset": "private_chat",
            "visibility": "private",
            "name": "guardbot doctor probe (safe to delete)",
            "initial_state": [closed],
        }
        try:
            room_id = str(
                (await self.hs.request("POST", "/_matrix/client/v3/createRoom", body))["room_id"]
            )
        except (HomeserverError, KeyError) as e:
            self.report.fail(name, f"could not create the probe room ({e})", "see the error")
            return
        try:
            await self._publish(room_id, "public")
        except HomeserverError as e:
            allowed, error = False, e
        else:
            allowed, error = True, None
            await self._publish(room_id, "private")
        finally:
            gone = await self._remove(room_id)
        listing = "listed it for a moment, unlisted it" if allowed else "Synapse refused to list it"
        probe = f"probe: created a private room, {listing}, {gone}"
        if allowed:
            self.report.ok(name, f"room_list_publication_rules let rooms be listed ({probe})")
        elif error is not None and error.status == 403:
            self.report.fail(
                name,
                f"room_list_publication_rules refused to list a room for {self.bot} and no"
                f" room is listed; Synapse's default is to deny all ({probe})",
                "in homeserver.yaml set room_list_publication_rules: [{action: allow}] (or rules"
                " for who may list rooms) and restart the homeserver",
            )
        else:
            self.report.fail(name, f"publishing the probe room failed ({error}; {probe})", "see it")

    async def _remove(self, room_id: str) -> str:
        try:
            await self.hs.request("POST", f"/_matrix/client/v3/rooms/{q(room_id)}/leave", {})
            await self.hs.request("POST", f"/_matrix/client/v3/rooms/{q(room_id)}/forget", {})
            if not self.admin:
                return f"left and forgot it ({room_id})"
            await self.hs.request(
                "DELETE", f"/_synapse/admin/v1/rooms/{q(room_id)}", {"purge": True}
            )
        except HomeserverError as e:
            return f"could not remove it ({room_id}: {e})"
        return f"purged it ({room_id})"

    async def namespaces(self) -> bool:
        """Does the registration the homeserver loaded cover guests? Masquerading tells, read-only:
        Synapse checks the namespace before it checks that the user exists."""
        guest = f"@{GUEST_SAMPLE}:{self.c['homeserver.domain']}"
        query = {"user_id": guest}
        try:
            await self.hs.request("GET", "/_matrix/client/v3/account/whoami", query=query)
        except HomeserverError as e:
            if e.status == 403 and "cannot masquerade" in e.error:
                return False
            if e.status != 403:
                raise
        return True
