"""A per-client token bucket, and who the client is behind trusted reverse proxies.

Every registration reaches the homeserver from guardbot's own address, so the homeserver's
per-address limits see one client; this is where each real client gets its own limit.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections.abc import Callable, Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    """An address as one host has it: an IPv4-mapped IPv6 one (what a `::` listener sees of
    an IPv4 peer) is that IPv4 address, so it matches an IPv4 trusted proxy and an IPv4 key."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def forwardable(client: str) -> str | None:
    """The client's address as guardbot passes it on to the homeserver; None if it is not
    one (a Unix socket peer): then the homeserver sees guardbot's."""
    address = _address(client)
    return str(address) if address is not None else None


def limit_key(client: str) -> str:
    """Whose bucket: one per IPv4 address, one per IPv6 /64 (the least a single subscriber is
    given; per /128, one host has billions of keys)."""
    address = _address(client)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address) if address is not None else client


class ClientAddress:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the last
    X-Forwarded-For entry not itself a trusted proxy. The header's left end is whatever the
    client wrote, so it is only reached when every hop on the way was trusted."""

    def __init__(self, trusted: Iterable[str]) -> None:
        self.trusted: list[Network] = [ipaddress.ip_network(n, strict=False) for n in trusted]

    def _trusted(self, address: Address) -> bool:
        return any(address in network for network in self.trusted)

    def __call__(self, peer: str | None, forwarded_for: str | None) -> str:
        peer_address = _address(peer or "")
        if peer_address is None:
            return peer or "unknown"
        if not forwarded_for or not self._trusted(peer_address):
            return str(peer_address)
        hops = [_address(part) for part in forwarded_for.split(",")]
        client = peer_address
        for hop in reversed(hops):
            if hop is None:  # garbage: stop at the last address a trusted hop vouched for
                break
            client = hop
            if not self._trusted(hop):
                break
        return str(client)


class RateLimiter:
    """burst_count requests at once per key, refilled at per_second."""

    def __init__(
        self,
        per_second: float,
        burst_count: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = float(per_second)
        self.burst = float(burst_count)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def _tokens(self, key: str, now: float) -> float:
        tokens, at = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - at) * self.rate)

    def _wait_ms(self, tokens: float) -> int:
        return max(1, math.ceil((1 - tokens) / self.rate * 1000))

    def waiting(self, client: str) -> int | None:
        """Would a hit be refused now? Milliseconds to wait, or None; takes nothing (for
        charging only what fails, e.g. a wrong token)."""
        tokens = self._tokens(limit_key(client), self.clock())
        return self._wait_ms(tokens) if tokens < 1 else None

    def hit(self, client: str) -> int | None:
        """Take one token: None if allowed, else milliseconds until one is available."""
        key = limit_key(client)
        now = self.clock()
        tokens = self._tokens(key, now)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return self._wait_ms(tokens)
        self._buckets[key] = (tokens - 1, now)
        if len(self._buckets) > self.max_keys:
            self._forget_full(now)
        return None

    def _forget_full(self, now: float) -> None:
        """A bucket that has refilled holds nothing worth keeping: memory stays bounded by
        the clients active recently, not by every address ever seen."""
        for key, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.burst:
                del self._buckets[key]
