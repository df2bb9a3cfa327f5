"""The claim page (guardbot/named_guests/page.py): outside text escaped, fields labelled,
nothing loaded from elsewhere."""

from __future__ import annotations

from guardbot.named_guests import page


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
