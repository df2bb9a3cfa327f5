"""The reminder text (a nag): an operator's template with a few placeholders, as plain text and
HTML. Pure, so the config can check a template without importing the PWLU feature."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping

# What a nag template may say; config validation rejects anything else (a typo would otherwise
# reach users verbatim).
NAG_PLACEHOLDERS = ("name", "user_id", "link", "nag", "max")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def render(template: str, values: Mapping[str, object], *, as_html: bool = False) -> str:
    """Fill {placeholders}; in HTML every value is escaped (a display name is anyone's text).
    Braces around anything that is not a placeholder are left as written."""

    def fill(match: re.Match[str]) -> str:
        if match.group(1) not in values:
            return match.group(0)
        value = str(values[match.group(1)])
        return html.escape(value, quote=True) if as_html else value

    return _PLACEHOLDER.sub(fill, template)
