"""Hostile input for the fault suite's property-based tests (hypothesis): awkward text and
JSON, broken events beside a good guest join, bodies and tokens for guardbot's own API; and the
one 5xx a test accepts, the homeserver's own answer relayed."""

from __future__ import annotations

import json
import secrets
import string
from typing import Any

from hypothesis import strategies as st

from .rawhttp import Answer, request

DOMAIN = "localhost"


# Text with the awkward parts of unicode in it: NUL, lone surrogates, RTL marks, emoji,
# combining characters, non-ASCII digits (which must not count as a guest's numeric ID).
awkward_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", "\x00", "\ud800", "\u202e", "😀", "e\u0301", "١٢٣", "@١٢٣:localhost"]),
    st.text(alphabet=string.digits, max_size=30).map(lambda d: f"@{d}:{DOMAIN}"),
)
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), awkward_text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(awkward_text, inner, max_size=6)
    ),
    max_leaves=40,
)
EVENT_TYPES = [
    "m.room.member",
    "m.room.message",
    "m.room.guest_access",
    "m.room.power_levels",
    "dev.guardbot.policy",
    "m.room.create",
]


def guest_join(n: int) -> dict[str, Any]:
    user = f"@{n}:{DOMAIN}"
    return {
        "type": "m.room.member",
        "room_id": f"!fuzz{n}:{DOMAIN}",
        "event_id": f"$good-{secrets.token_hex(8)}",
        "sender": user,
        "state_key": user,
        "content": {"membership": "join", "kind": "guest"},
        "unsigned": {"prev_content": {"membership": "leave"}},
    }


@st.composite
def broken_events(draw: st.DrawFn) -> Any:
    """Events that look like ones guardbot cares about, with parts of the wrong shape."""
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)  # not even an object
    event: dict[str, Any] = guest_join(draw(st.integers(1, 10**6)))
    event["type"] = draw(st.sampled_from(EVENT_TYPES))
    if event["type"] != "m.room.member":
        event["state_key"] = ""
        event["content"] = {"body": "!guardbot status", "guest_access": "can_join"}
    for key in draw(st.lists(st.sampled_from(sorted(event) + ["content.x"]), max_size=4)):
        if key == "content.x":
            event["content"] = draw(json_values)
        elif draw(st.booleans()):
            event.pop(key, None)
        else:  # awkward strings often: an ID is where a database would choke on them
            event[key] = draw(st.one_of(awkward_text, json_values))
    return event


header_bytes = st.binary(max_size=64).filter(lambda b: b"\r" not in b and b"\n" not in b)
register_bodies = st.fixed_dictionaries(
    {},
    optional={
        "username": st.one_of(
            awkward_text, json_values, st.text(string.ascii_lowercase, max_size=300)
        ),
        "auth": st.one_of(json_values, st.fixed_dictionaries({"type": awkward_text})),
        "guest_access_token": st.one_of(awkward_text, json_values),
        "initial_device_display_name": st.one_of(awkward_text, json_values),
        "password": awkward_text,
    },
)
bodies = st.one_of(
    st.binary(max_size=512),
    json_values.map(lambda v: json.dumps(v).encode()),
    register_bodies.map(lambda v: json.dumps(v).encode()),
)
claim_tokens = st.one_of(
    st.text(string.ascii_letters + string.digits + "-_", max_size=120),
    st.text(max_size=60),
)


def assert_relayed(
    hs_port: int, answer: Answer, headers: list[tuple[bytes, bytes]] | None, body: bytes
) -> None:
    """A 5xx is intended only where guardbot relays the homeserver's own answer (the PWLU API
    passes them through by design): the homeserver must answer the same to the token checked.
    Synapse 1.163 answers 500 to some tokens (e.g. "Bearer :": its guest-token parser)."""
    tokens = [v[len(b"Bearer ") :] for k, v in headers or [] if v.startswith(b"Bearer ")]
    try:
        guest = json.loads(body).get("guest_access_token")
        tokens += [guest.encode()] if isinstance(guest, str) and guest.isascii() else []
    except (ValueError, AttributeError, RecursionError):
        pass
    for token in tokens:
        path = b"/_matrix/client/v3/account/whoami"
        if (
            request(hs_port, b"GET", path, headers=[(b"Authorization", b"Bearer " + token)]).status
            == answer.status
        ):
            return
    raise AssertionError(f"guardbot's own {answer.status}: {answer.body[:300]!r}")
