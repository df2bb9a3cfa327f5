"""The README's nginx example for an active/standby pair (docker/nginx-guardbot-pair.conf),
run as it is written but for its addresses: the compose service names become loopback ports.
For the pair's fault tests and bench 7."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "docker" / "nginx-guardbot-pair.conf"


def nginx() -> str | None:
    """nginx's path, if installed (Debian: nginx-light; .ci/run installs it)."""
    return shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")


def pair_config(listen: int, backends: Sequence[int]) -> str:
    text = EXAMPLE.read_text()
    names = ("guardbot:29330", "guardbot-standby:29330")
    assert len(backends) == len(names) and all(n in text for n in names)
    for name, port in zip(names, backends, strict=True):
        text = text.replace(f"server {name} ", f"server 127.0.0.1:{port} ")
    assert "listen 29330;" in text
    return text.replace("listen 29330;", f"listen 127.0.0.1:{listen};")


@contextlib.contextmanager
def nginx_pair(workdir: Path, listen: int, backends: Sequence[int]) -> Iterator[Path]:
    """nginx in front of guardbots on `backends`, listening on `listen`; yields its log."""
    binary = nginx()
    if binary is None:
        raise RuntimeError("nginx is not installed (Debian: nginx-light)")
    root = workdir / "nginx"
    root.mkdir()
    (root / "pair.conf").write_text(pair_config(listen, backends))
    # Run as root, nginx's workers would be `nobody`, who cannot write the temporary files of
    # large request bodies under this (private) directory: they run as its owner instead.
    user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
    (root / "nginx.conf").write_text(
        f"{user}pid {root}/nginx.pid;\nerror_log {root}/error.log info;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log {root}/access.log;\n"
        + "".join(
            f"    {kind}_temp_path {root}/{kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        + f"    include {root}/pair.conf;\n}}\n"
    )
    proc = subprocess.Popen(
        [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"],
        stderr=subprocess.STDOUT,
        stdout=(root / "stdout.log").open("ab"),
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", listen), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("nginx did not start:\n" + (root / "error.log").read_text())
            time.sleep(0.05)
        yield root / "access.log"
    finally:
        proc.terminate()
        proc.wait(10)
