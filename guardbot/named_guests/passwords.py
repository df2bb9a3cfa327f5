"""A named guest's password: derived from a server secret and the user ID, never stored.

guardbot can always work it out again (to check whether it still logs in, or to authorise the
change to the user's own password), and the database holds nothing that would log anyone in.
Each account records the id of the secret its password came from, so the secret can rotate:
a new one for new accounts, old ones kept (pwlu.previous_secrets) for the accounts made with them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Iterable
from enum import StrEnum

from guardbot.matrix.client import Homeserver, HomeserverError

log = logging.getLogger(__name__)

# Satisfies password policies that want a digit, both cases and a symbol; the rest is 256 bits
# of HMAC output.
_POLICY_PREFIX = "Gb1!"


class UnknownKey(LookupError):
    """The account's password came from a secret that is no longer configured."""


def key_id(secret: str) -> str:
    """A short public name for a secret (its hash), stored per account."""
    return hashlib.sha256(b"guardbot-pwlu-key\x00" + secret.encode()).hexdigest()[:12]


class KeyRing:
    def __init__(self, secret: str, previous: Iterable[str] = ()) -> None:
        self.current = key_id(secret)
        self._secrets = {key_id(s): s.encode() for s in [*previous, secret]}

    def knows(self, kid: str) -> bool:
        return kid in self._secrets

    def password(self, user_id: str, kid: str | None = None) -> str:
        secret = self._secrets.get(kid or self.current)
        if secret is None:
            raise UnknownKey(kid)
        # surrogatepass: a hostile username (a lone surrogate from JSON) is still only bytes
        # to hash; the homeserver then refuses the name itself.
        data = user_id.encode("utf-8", "surrogatepass")
        mac = hmac.new(secret, b"guardbot-pwlu-password\x00" + data, "sha256")
        return _POLICY_PREFIX + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()

    def subkey(self, purpose: str) -> bytes:
        """A key for another use (claim page CSRF), from the current secret."""
        secret = self._secrets[self.current]
        return hmac.new(secret, b"guardbot-pwlu-subkey\x00" + purpose.encode(), "sha256").digest()


class Probe(StrEnum):
    WORKS = "works"  # the derived password logs in: nobody has set their own yet
    REFUSED = "refused"  # it does not: a password was set elsewhere, or the account is gone


async def probe(client: Homeserver, user_id: str, password: str, *, admin: bool = False) -> Probe:
    """Does the derived password still work? Raises HomeserverError for anything that is not a
    yes or no (429, outages) so callers defer.

    With admin rights it asks without logging in: a login comes from guardbot's one address,
    so every named guest's check would count against the homeserver's per-address login limit
    (Synapse's rc_login.address: a few, then one every few minutes). Instead guardbot takes a
    short-lived token for the user from the admin API and has the password checked by the
    user-interactive auth of deleting no devices, which that limit does not count."""
    if admin:
        return await _probe_by_admin(client, user_id, password)
    try:
        token = await client.login(user_id, password)
    except HomeserverError as e:
        if e.status == 403 and e.errcode in ("M_FORBIDDEN", "M_USER_DEACTIVATED"):
            return Probe.REFUSED
        raise
    await _logout(client, user_id, token)
    return Probe.WORKS


async def _probe_by_admin(client: Homeserver, user_id: str, password: str) -> Probe:
    try:
        token = await client.admin_login_as(user_id)
    except HomeserverError as e:
        if e.status in (400, 404):
            return Probe.REFUSED  # deactivated or gone: the callers tell which
        raise
    try:
        works = await client.password_confirms(token, user_id, password)
    finally:
        await _logout(client, user_id, token)
    return Probe.WORKS if works else Probe.REFUSED


async def _logout(client: Homeserver, user_id: str, token: str) -> None:
    try:
        await client.logout(token)
    except HomeserverError as e:
        # A login probe's device stays until the next probe reuses (and logs out) the same one.
        log.warning("Could not log out guardbot's password check for %s: %s", user_id, e)
