"""The claim page's HTML: one small self-contained document, no scripts, no external assets.

Everything that comes from outside (user IDs, the homeserver's reasons) is escaped. The style
sheet is inline and allowed by its hash in the Content-Security-Policy, which forbids
everything else, so even a missed escape could not run a script.
"""

from __future__ import annotations

import base64
import hashlib
from html import escape

from aiohttp import web

_STYLE = """
body { font: 1rem/1.5 system-ui, sans-serif; margin: 0; background: #f6f7f9; color: #17191c; }
main { max-width: 26rem; margin: 3rem auto; padding: 1.5rem 2rem; background: #fff;
       border-radius: .5rem; box-shadow: 0 1px 4px rgba(0, 0, 0, .15); }
h1 { font-size: 1.5rem; margin-top: 0; }
label { display: block; font-weight: 600; margin-top: 1rem; }
input { box-sizing: border-box; width: 100%; font: inherit; padding: .5rem;
        border: 1px solid #6b7280; border-radius: .25rem; }
input:focus, button:focus { outline: 3px solid #2563eb; outline-offset: 1px; }
button { margin-top: 1.5rem; font: inherit; font-weight: 600; padding: .6rem 1.2rem;
         border: 0; border-radius: .25rem; background: #1d4ed8; color: #fff; cursor: pointer; }
.problem { color: #991b1b; background: #fef2f2; border-left: 4px solid #991b1b;
           padding: .5rem .75rem; }
.done { color: #14532d; background: #f0fdf4; border-left: 4px solid #15803d;
        padding: .5rem .75rem; }
.hint { color: #4b5563; font-size: .9rem; }
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
_CSP = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; form-action 'self';"
    " frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = {
    "Content-Security-Policy": _CSP,
    # The link carries the claim token: never hand it to another site, never keep a copy.
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n{body}\n</main>\n</body>\n</html>\n"
    )


def respond(
    title: str, body: str, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        text=_document(title, body),
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={**_HEADERS, **(headers or {})},
    )


def form(user_id: str, csrf: str, problem: str | None = None) -> str:
    """The set-a-password form. A problem is announced to screen readers (role=alert) and
    tied to the first field, which gets the focus."""
    alert = ""
    described = ' aria-describedby="rules"'
    if problem:
        alert = f'<p id="problem" class="problem" role="alert">{escape(problem)}</p>\n'
        described = ' aria-describedby="problem rules" aria-invalid="true"'
    return (
        "<h1>Set a password</h1>\n"
        f"<p>Choose a password for <strong>{escape(user_id)}</strong>. With it you can log in"
        " to this account from any Matrix app.</p>\n"
        f"{alert}"
        '<form method="post">\n'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">\n'
        # Lets password managers store the password under the right account.
        f'<input type="hidden" name="username" autocomplete="username"'
        f' value="{escape(user_id)}">\n'
        '<label for="new_password">New password</label>\n'
        '<input id="new_password" name="new_password" type="password" required'
        f' autocomplete="new-password" autofocus{described}>\n'
        '<label for="confirm_password">New password, again</label>\n'
        '<input id="confirm_password" name="confirm_password" type="password" required'
        ' autocomplete="new-password">\n'
        '<p id="rules" class="hint">Your homeserver decides how long and varied a password'
        " must be; if it refuses one, it says why here.</p>\n"
        '<button type="submit">Set password</button>\n'
        "</form>"
    )


def success(user_id: str) -> str:
    return (
        "<h1>Password set</h1>\n"
        f'<p class="done" role="status">You can now log in as <strong>{escape(user_id)}'
        "</strong> with your new password. You will get no more reminders.</p>"
    )


def invalid_link() -> str:
    return (
        "<h1>This link no longer works</h1>\n"
        '<p class="problem" role="alert">It has expired, was already used, or was never'
        " valid.</p>\n<p>If you still need to set a password, use the link in the newest"
        " reminder in your Matrix app.</p>"
    )


def message(heading: str, text: str) -> str:
    return f'<h1>{escape(heading)}</h1>\n<p class="problem" role="alert">{escape(text)}</p>'
