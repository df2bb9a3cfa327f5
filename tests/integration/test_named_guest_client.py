"""The client integration docs/named-guests.md shows, run as written: its matrix-js-sdk example
(the ```js block, taken from the page itself) turns a real guest of a real Synapse into a named
guest through a real guardbot. Node.js and the npm registry are needed; without them the test
is skipped, saying so."""

from __future__ import annotations

import asyncio
import json
import pathlib
import re
import shutil
import subprocess

import pytest

from tests.support.homeserver import Homeserver, StartGuardbot
from tests.support.pwlu_client import Api, start_pwlu, unique

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Pinned: the newest releases need Node.js 22; Debian's is 20.
SDK = "matrix-js-sdk@36.2.0"

DRIVER = """
import { createClient } from "matrix-js-sdk";
import { becomeNamedGuest } from "./example.mjs";

const [homeserver, api, username] = process.argv.slice(2);
const guest = createClient({ baseUrl: homeserver });
const registered = await guest.registerGuest({});
guest.setAccessToken(registered.access_token);
guest.credentials.userId = registered.user_id;
guest.setGuest(true);
const named = await becomeNamedGuest(guest, api, username);
const who = await named.whoami();
console.log(JSON.stringify({ guest: registered.user_id, named: who.user_id,
                             token: named.getAccessToken() }));
"""


def docs_example() -> str:
    page = (ROOT / "docs" / "named-guests.md").read_text()
    (block,) = re.findall(r"```js\n(.*?)```", page, flags=re.S)
    return block


@pytest.fixture(scope="module")
def node_project(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed (apt-get install nodejs npm)")
    project = tmp_path_factory.mktemp("js-client")
    (project / "package.json").write_text('{"private": true, "type": "module"}')
    done = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", SDK],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"npm could not install {SDK}: {done.stderr.strip()[-300:]}")
    (project / "example.mjs").write_text(docs_example())
    (project / "driver.mjs").write_text(DRIVER)
    return project


async def test_the_documented_matrix_js_sdk_example_makes_a_named_guest(
    node_project: pathlib.Path, homeserver: Homeserver, start_guardbot: StartGuardbot
) -> None:
    proc = await start_pwlu(start_guardbot, homeserver)
    name = unique("jsclient").lower()
    node = await asyncio.create_subprocess_exec(
        "node",
        "driver.mjs",
        homeserver.synapse.base_url,
        proc.url + "/_guardbot/v1/pwlu",
        name,
        cwd=node_project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(node.communicate(), 120)
    assert node.returncode == 0, err.decode()[-2000:]
    result = json.loads(out.decode().strip().splitlines()[-1])
    assert re.fullmatch(r"@\d+:.*", result["guest"])
    assert result["named"] == f"@{name}:{homeserver.synapse.server_name}"
    body = await Api(proc.url).status(result["token"])
    assert body["pwlu"] is True and body["password_set"] is False
