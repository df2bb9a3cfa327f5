"""HTTP over a plain socket: any bytes in the path, headers and body, as a hostile client would
send them (aiohttp's client refuses to send many of them)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

NO_ANSWER = 0  # the connection closed without a response


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


def request(
    port: int,
    method: bytes,
    path: bytes,
    *,
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
    body: bytes = b"",
    timeout: float = 30,
) -> Answer:
    head = [method + b" " + path + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    head.append(b"Content-Length: " + str(len(body)).encode())
    head += [name + b": " + value for name, value in headers]
    data = b"\r\n".join(head) + b"\r\n\r\n" + body
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered (e.g. 413) and closed before the whole body was in: read it
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    raw = b"".join(chunks)
    head_end = raw.find(b"\r\n\r\n")
    if not raw.startswith(b"HTTP/1.") or head_end < 0:
        return Answer(NO_ANSWER, {}, raw)
    lines = raw[:head_end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    parsed = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        parsed[name.strip().lower()] = value.strip()
    return Answer(status, parsed, raw[head_end + 4 :])


def bearer(token: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"Authorization", b"Bearer " + token)]
