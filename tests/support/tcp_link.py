"""A TCP link the tests can cut (to PostgreSQL, say): connections through it are dropped and new
ones refused, as when a machine loses its network to the database; restored with `up = True`."""

from __future__ import annotations

import asyncio
import contextlib

from tests.support.homeserver import free_port


class Link:
    """A TCP link to PostgreSQL that the test can cut: connections through it are dropped and
    new ones refused, as when a machine loses its network to the database."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = True
        self.port = free_port()
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:  # the database itself is away (restarting): as if it refused
            writer.close()
            return
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, ConnectionError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    def cut(self) -> None:
        self.up = False
        for writer in self.writers:
            writer.transport.abort()
        self.writers = []

    async def close(self) -> None:
        self.cut()
        self.server.close()
