"""The real Dockerfile built and run: the first run, then the service against a real Synapse on
the host, as an admin would run them.

Needs a Docker daemon (started here when none runs and `dockerd` is installed) and a base
image: Docker Hub is out of reach on these machines, so a Debian base is made once with
`debootstrap` and `docker import`ed, and the build gets it through its BASE argument, the
only thing overridden. Where neither can be had, the test skips and says why.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import stat
import subprocess
import time
from collections.abc import Iterator

import aiohttp
import pytest
from ruamel.yaml import YAML

from devtools.local_synapse import LocalSynapse
from tests.support.matrix_client import User, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
BASE = "guardbot-test-base:bookworm"
IMAGE = "guardbot-test:image"
UID = 990
# Not 127.0.0.1: the health check must follow the address guardbot listens on.
LISTEN = "127.0.0.2"


def docker(*args: str, check: bool = True, timeout: float = 600, **kw: object) -> str:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, **kw)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args[:3])}: {done.stderr or done.stdout}")
    return done.stdout.strip()


def daemon_running() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode == 0


def start_daemon() -> str | None:
    """None once a daemon answers; else why none can run here."""
    if daemon_running():
        return None
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        return (
            "no Docker daemon runs and docker/dockerd are not installed (apt-get install docker.io)"
        )
    if os.geteuid() != 0:
        return "no Docker daemon runs, and starting one needs root"
    log = open("/tmp/guardbot-test-dockerd.log", "ab")
    # No systemd here; no iptables either: containers use the host's network.
    subprocess.Popen(
        ["dockerd", "--iptables=false", "--ip-masq=false", "--bridge=none"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    for _ in range(60):
        if daemon_running():
            return None
        time.sleep(0.5)
    return "dockerd did not start (see /tmp/guardbot-test-dockerd.log)"


def make_base(tmp: pathlib.Path) -> str | None:
    """The local Debian base, made once and kept by the daemon; None when it exists."""
    if subprocess.run(["docker", "image", "inspect", BASE], capture_output=True).returncode == 0:
        return None
    if shutil.which("debootstrap") is None:
        return f"no {BASE} image and no debootstrap to make one (apt-get install debootstrap)"
    rootfs = tmp / "rootfs"
    done = subprocess.run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=python3,python3-venv,ca-certificates",
            "bookworm",
            str(rootfs),
            "http://deb.debian.org/debian",
        ],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        return f"debootstrap failed: {done.stderr[-500:]}"
    # pip inside the build reaches the package index with the host's CA certificates.
    shutil.copyfile(
        "/etc/ssl/certs/ca-certificates.crt", rootfs / "etc/ssl/certs/ca-certificates.crt"
    )
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    docker("import", "-", BASE, stdin=tar.stdout)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    return None


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    why = start_daemon() or make_base(tmp_path_factory.mktemp("base"))
    if why:
        pytest.skip(why)
    docker("build", "--network=host", "--build-arg", f"BASE={BASE}", "-t", IMAGE, str(ROOT))
    yield IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def mode(path: pathlib.Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_the_image_runs_guardbot_as_an_admin_would(
    image: str, tmp_path: pathlib.Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, UID, UID)
    port = free_port()
    synapse = LocalSynapse(tmp_path / "synapse", appservice_files=[data / "registration.yaml"])
    env = {
        "GUARDBOT_HOMESERVER__ADDRESS": synapse.base_url,
        "GUARDBOT_HOMESERVER__DOMAIN": synapse.server_name,
        "GUARDBOT_APPSERVICE__ADDRESS": f"http://{LISTEN}:{port}",
        "GUARDBOT_APPSERVICE__HOSTNAME": LISTEN,
        "GUARDBOT_APPSERVICE__PORT": str(port),
        "GUARDBOT_POLICY__LISTED_ROOMS": "kick",
        "GUARDBOT_DIRECTORY__POLL_INTERVAL": "1",
    }
    flags = [f"--env={k}={v}" for k, v in env.items()]
    run = ["run", "--network=host", f"--volume={data}:/data", *flags]

    # Only the installed venv: no build directory or egg-info left from building.
    leftovers = docker(
        "run",
        "--rm",
        "--user=0",  # to look everywhere; the service itself runs as 990
        "--entrypoint=sh",
        image,
        "-c",
        "find / -xdev \\( -name '*.egg-info' -o -path /src -o -path /opt/guardbot/build \\)",
    )
    assert leftovers == "", leftovers

    # The first run: config and registration, then it exits.
    first = docker(*run, "--rm", image)
    assert "first run" in first
    config, registration = data / "config.yaml", data / "registration.yaml"
    assert mode(config) == 0o600 and config.stat().st_uid == UID
    assert mode(registration) == 0o644  # the homeserver, another user, reads it
    as_token = YAML(typ="safe").load(config.read_text())["appservice"]["as_token"]

    await synapse.start()
    name = f"guardbot-test-{port}"
    try:
        admin_id, admin_token = await synapse.register_user("admin", "admin-pw", admin=True)
        bot = await synapse.register_appservice_user(as_token, "guardbot")
        await synapse.make_admin(admin_token, bot)
        docker(
            *run,
            "--detach",
            f"--name={name}",
            "--health-interval=1s",
            "--health-start-period=1s",
            image,
        )
        await wait_for(lambda: _ready(f"http://{LISTEN}:{port}"), timeout=60, what="ready")
        assert docker("exec", name, "id", "-u") == str(UID)  # not root
        await wait_for(lambda: _healthy(name), timeout=60, what="the health check healthy")
        doctor = subprocess.run(
            [
                "docker",
                "exec",
                name,
                "guardbot",
                "doctor",
                "-c",
                "/data/config.yaml",
                "-r",
                "/data/registration.yaml",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr

        # It enforces: a guest joining a listed room is removed.
        alice_id, alice_token = await synapse.register_user("alice", "alice-pw")
        alice = User(synapse.base_url, alice_id, alice_token)
        room_id = await alice.create_room(listed=True, invite=[bot], power={bot: 50})
        await wait_for(lambda: _member(alice, room_id, bot, "join"), what="guardbot in")
        guest_id, guest_token = await synapse.register_guest()
        await User(synapse.base_url, guest_id, guest_token).join(room_id)
        await wait_for(lambda: _member(alice, room_id, guest_id, "leave"), what="guest out")

        docker("stop", "--time=10", name)
        assert docker("inspect", "--format={{.State.ExitCode}}", name) == "0"
        logs = subprocess.run(["docker", "logs", name], capture_output=True, text=True).stderr
        assert "Traceback" not in logs, logs
        assert as_token not in logs
    finally:
        subprocess.run(["docker", "rm", "-f", name], capture_output=True)
        await synapse.stop()


async def _ready(url: str) -> bool:
    """Alive (/live) and ready to take transactions (/ready)."""
    try:
        async with aiohttp.ClientSession() as session:
            for path in ("/_matrix/mau/live", "/_matrix/mau/ready"):
                async with session.get(url + path) as r:
                    if r.status != 200:
                        return False
        return True
    except aiohttp.ClientError:
        return False


async def _healthy(name: str) -> bool:
    return docker("inspect", "--format={{.State.Health.Status}}", name) == "healthy"


async def _member(viewer: User, room_id: str, user_id: str, membership: str) -> bool:
    return await viewer.membership(room_id, user_id) == membership
