"""WorkerSynapse itself: a worker that cannot start is named, with its log, and nothing is
left running; the proxy routes as Synapse's worker docs say."""

from __future__ import annotations

import pathlib
import socket

import pytest

from devtools.synapse_workers import WorkerSynapse
from devtools.worker_proxy import route


async def test_a_worker_that_dies_at_start_says_which_with_its_log(tmp_path: pathlib.Path) -> None:
    synapse = WorkerSynapse(tmp_path / "synapse")
    blocker = socket.socket()  # the client worker's port taken: it cannot listen
    blocker.bind(("127.0.0.1", synapse.workers[WorkerSynapse.CLIENT].port))
    blocker.listen()
    try:
        with pytest.raises(RuntimeError) as failed:
            await synapse.start()
    finally:
        blocker.close()
        await synapse.stop()
        await synapse.drop_database()
    message = str(failed.value)
    assert "worker client1 exited" in message, message
    assert "Address already in use" in message, message  # from the worker's own log
    assert synapse.pids == {}  # main, the other worker and the proxy were stopped too


@pytest.mark.parametrize(
    "method,path,backend",
    [
        ("POST", "/_matrix/client/v1/appservice/guardbot/ping", "appservice"),
        ("GET", "/_matrix/client/v3/sync", "client"),
        ("POST", "/_matrix/client/v3/join/%21r%3Ax", "client"),
        ("POST", "/_matrix/client/v3/rooms/!r:x/kick", "client"),
        ("PUT", "/_matrix/client/v3/rooms/!r:x/state/m.room.guest_access/", "client"),
        ("PUT", "/_matrix/client/v3/rooms/!r:x/send/m.room.message/t1", "client"),
        ("GET", "/_matrix/client/v3/rooms/!r:x/messages", "client"),
        ("GET", "/_matrix/client/v3/publicRooms", "client"),
        ("PUT", "/_matrix/client/v3/profile/@g:x/displayname", "client"),
        ("GET", "/_synapse/admin/v2/users/@g:x", "client"),
        ("PUT", "/_synapse/admin/v2/users/@g:x", "main"),
        ("POST", "/_matrix/client/v3/register", "main"),
        ("PUT", "/_matrix/client/v3/directory/list/room/!r:x", "main"),
        ("POST", "/_matrix/client/v3/account/password", "main"),
        ("GET", "/_synapse/admin/v1/rooms/!r:x/messages", "main"),
        ("GET", "/health", "main"),
    ],
)
def test_routes_follow_the_worker_docs(method: str, path: str, backend: str) -> None:
    assert route(method, path) == backend
