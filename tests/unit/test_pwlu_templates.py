"""The reminder templates and the claim page: placeholders filled, outside text escaped."""

from __future__ import annotations

from guardbot.core.reminder_text import render
from guardbot.named_guests import page

VALUES = {
    "name": "<b>Eve</b> & co",
    "user_id": "@eve:x",
    "link": "https://x/c?a=1&b=2",
    "nag": 2,
    "max": 5,
}


def test_plain_text_keeps_values_as_they_are() -> None:
    text = render("Hi {name}! {link} ({nag}/{max})", VALUES)
    assert text == "Hi <b>Eve</b> & co! https://x/c?a=1&b=2 (2/5)"


def test_html_escapes_every_value() -> None:
    html = render('<p>Hi {name}, <a href="{link}">here</a></p>', VALUES, as_html=True)
    assert html == (
        '<p>Hi &lt;b&gt;Eve&lt;/b&gt; &amp; co, <a href="https://x/c?a=1&amp;b=2">here</a></p>'
    )


def test_braces_that_are_not_placeholders_stay() -> None:
    assert render("{unknown} {name}", {"name": "x"}) == "{unknown} x"
    assert render("{{name}}", {"name": "x"}) == "{x}"


def test_claim_form_escapes_and_labels_its_fields() -> None:
    html = page.form('@"><script>:x', "csrf-value", problem="<img src=x onerror=alert(1)>")
    assert "<script>" not in html and "<img" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert '<label for="new_password">' in html and 'id="new_password"' in html
    assert '<label for="confirm_password">' in html and 'id="confirm_password"' in html
    assert 'role="alert"' in html and 'aria-invalid="true"' in html
    assert 'autocomplete="new-password"' in html


def test_claim_page_loads_nothing_from_elsewhere() -> None:
    resp = page.respond("t", page.form("@a:x", "c"))
    body = resp.text or ""
    assert "http://" not in body and "https://" not in body and "<script" not in body
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "form-action 'self'" in csp
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    assert resp.headers["Cache-Control"] == "no-store"
