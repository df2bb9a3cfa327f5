"""The doctor's output: one line per check, ✓ or ✗ (and for ✗, the fix), ! for something the
admin should know but may have chosen, or – for not checked."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO


def _marks(stream: TextIO) -> tuple[str, str, str, str]:
    # A terminal or log that cannot show ✓/✗ (LANG=C, an ASCII pipe) still gets a clear verdict.
    try:
        "✓✗–→".encode(stream.encoding or "ascii")
    except (UnicodeEncodeError, LookupError):
        return "[ok]", "[FAIL]", "[--]", "[note]"
    return "✓", "✗", "–", "!"


class Report:
    def __init__(
        self, stream: TextIO | None = None, redact: Callable[[str], str] = lambda s: s
    ) -> None:
        self.stream = stream or sys.stdout
        self.redact = redact
        self.ok_mark, self.fail_mark, self.skip_mark, self.note_mark = _marks(self.stream)
        self.arrow = "→" if self.ok_mark == "✓" else "->"
        self.failures = 0

    def _line(self, mark: str, name: str, text: str) -> None:
        # Every line goes through the redactor: a homeserver or database error message must
        # never carry a token or password to the screen.
        line = " ".join(self.redact(f"{mark} {name}: {text}").split())
        print(line, file=self.stream, flush=True)

    def ok(self, name: str, text: str) -> None:
        self._line(self.ok_mark, name, text)

    def fail(self, name: str, text: str, fix: str) -> None:
        self.failures += 1
        self._line(self.fail_mark, name, f"{text} {self.arrow} fix: {fix}")

    def note(self, name: str, text: str, what_to_do: str) -> None:
        """Not a failure (the admin may want it so), but worth a look."""
        self._line(self.note_mark, name, f"{text} {self.arrow} {what_to_do}")

    def skip(self, name: str, why: str) -> None:
        self._line(self.skip_mark, name, f"not checked: {why}")

    def summary(self) -> int:
        if self.failures:
            print(f"{self.failures} problem(s) found.", file=self.stream)
            return 1
        print("Everything checked is fine.", file=self.stream)
        return 0
