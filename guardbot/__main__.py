"""`guardbot` / `python -m guardbot`: run it, or `-g` to write the appservice registration."""

from __future__ import annotations

from .app import Guardbot


def main() -> None:
    Guardbot().run()


if __name__ == "__main__":
    main()
