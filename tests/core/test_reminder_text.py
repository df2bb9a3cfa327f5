"""The reminder templates (guardbot/core/reminder_text.py): placeholders filled, outside text
escaped in HTML."""

from __future__ import annotations

from guardbot.core.reminder_text import render

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
