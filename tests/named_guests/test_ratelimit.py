"""The per-client rate limit and who the client is behind trusted proxies."""

from __future__ import annotations

from guardbot.named_guests.ratelimit import ClientAddress, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_burst_then_refused_with_the_wait_then_refilled() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=0.5, burst_count=3, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    assert limiter.hit("a") == 2000  # one token takes 2 s at 0.5/s
    clock.now += 1
    assert limiter.hit("a") == 1000
    clock.now += 1
    assert limiter.hit("a") is None
    assert limiter.hit("a") == 2000


def test_clients_have_their_own_buckets() -> None:
    limiter = RateLimiter(per_second=0.1, burst_count=1, clock=Clock())
    assert limiter.hit("a") is None
    assert limiter.hit("a") is not None
    assert limiter.hit("b") is None


def test_memory_stays_bounded_by_recent_clients() -> None:
    clock = Clock()
    limiter = RateLimiter(per_second=1, burst_count=2, clock=clock, max_keys=10)
    for i in range(10):
        limiter.hit(f"old{i}")
    clock.now += 60  # every old bucket has refilled: nothing worth keeping
    limiter.hit("new")
    assert len(limiter._buckets) == 1


def test_forwarded_for_only_from_trusted_proxies() -> None:
    address = ClientAddress(["10.0.0.0/8", "::1"])
    # Not a proxy: the header is the client's own claim and counts for nothing.
    assert address("203.0.113.9", "198.51.100.1") == "203.0.113.9"
    # A trusted proxy: the client is the address it saw.
    assert address("10.1.2.3", "198.51.100.1") == "198.51.100.1"
    # The client wrote its own header in front; the proxy appended the real address.
    assert address("10.1.2.3", "1.1.1.1, 198.51.100.1") == "198.51.100.1"
    # Two trusted hops.
    assert address("::1", "198.51.100.1, 10.9.9.9") == "198.51.100.1"
    assert address("10.1.2.3", None) == "10.1.2.3"
    # Garbage after trusted hops: the last address a trusted hop vouched for.
    assert address("10.1.2.3", "junk, 10.2.2.2") == "10.2.2.2"


def test_no_trusted_proxies_means_the_peer() -> None:
    assert ClientAddress([])("127.0.0.1", "8.8.8.8") == "127.0.0.1"


def test_one_ipv6_subscriber_is_one_client() -> None:
    """Per /128, one host has 2**64 addresses of its /64 to spend: it is keyed per /64."""
    limiter = RateLimiter(per_second=0.1, burst_count=2, clock=Clock())
    assert limiter.hit("2001:db8:1:2::1") is None
    assert limiter.hit("2001:db8:1:2:ffff::7") is None
    assert limiter.hit("2001:db8:1:2:abcd::9") is not None  # the same /64
    assert limiter.hit("2001:db8:1:3::1") is None  # the next /64 is someone else


def test_an_ipv4_peer_on_an_ipv6_listener_is_its_ipv4_address() -> None:
    """A `::` listener sees an IPv4 client as ::ffff:a.b.c.d: it must match an IPv4 trusted
    proxy, and share its bucket with the same client seen as plain IPv4."""
    address = ClientAddress(["10.0.0.0/8"])
    assert address("::ffff:10.1.2.3", "198.51.100.1") == "198.51.100.1"
    assert address("::ffff:203.0.113.9", None) == "203.0.113.9"
    limiter = RateLimiter(per_second=0.1, burst_count=1, clock=Clock())
    assert limiter.hit("::ffff:203.0.113.9") is None
    assert limiter.hit("203.0.113.9") is not None


def test_waiting_takes_nothing() -> None:
    limiter = RateLimiter(per_second=0.5, burst_count=1, clock=Clock())
    assert limiter.waiting("a") is None and limiter.waiting("a") is None
    assert limiter.hit("a") is None
    assert limiter.waiting("a") == 2000
