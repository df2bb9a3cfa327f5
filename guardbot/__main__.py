"""`guardbot` / `python -m guardbot`.

guardbot -c config.yaml                            run it
guardbot -c config.yaml -g -r registration.yaml    write the appservice registration
guardbot doctor -c config.yaml [--fix]             check a set-up, one line per check
guardbot audit -c config.yaml [filters]            print the audit log as JSON lines
"""

from __future__ import annotations

import importlib
import sys

# Tools that run once and exit; each module has main(argv) -> exit code.
SUBCOMMANDS = {"doctor": "guardbot.tools.doctor.cli", "audit": "guardbot.tools.audit"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        tool = importlib.import_module(SUBCOMMANDS[sys.argv[1]])
        sys.exit(tool.main(sys.argv[2:]))
    from .app import Guardbot

    Guardbot().run()


if __name__ == "__main__":
    main()
