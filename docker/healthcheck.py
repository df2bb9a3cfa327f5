"""The container's health check: is guardbot's listener alive where it was told to listen?

GUARDBOT_APPSERVICE__HOSTNAME and __PORT, as the config reads them. A wildcard address is
reached on loopback; any other on itself (127.0.0.1 would miss a listener bound to one
non-loopback address).
"""

import os
import sys
import urllib.request

host = os.environ.get("GUARDBOT_APPSERVICE__HOSTNAME", "127.0.0.1")
port = os.environ.get("GUARDBOT_APPSERVICE__PORT", "29330")
host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
if ":" in host:
    host = f"[{host}]"
try:
    with urllib.request.urlopen(f"http://{host}:{port}/_matrix/mau/live", timeout=4) as resp:
        sys.exit(0 if resp.status == 200 else 1)
except Exception as e:
    print(f"guardbot health check: {e}", file=sys.stderr)
    sys.exit(1)
