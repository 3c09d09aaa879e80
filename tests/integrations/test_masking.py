"""What a failure may show of an outside server's secrets: nothing."""

from __future__ import annotations

from integrations.masking import masked, url_secrets


def test_every_part_of_a_url_that_may_hold_a_token_is_masked() -> None:
    url = "ntfy://dana:pa55word@push.example.com/tk_8c1f9e?auth=qs-secret-77&priority=high"
    said = f"Failed to send to {url}: 401 Unauthorized (token tk_8c1f9e, auth qs-secret-77)"
    shown = masked(said, url_secrets(url))
    for secret in ("dana", "pa55word", "push.example.com", "tk_8c1f9e", "qs-secret-77"):
        assert secret not in shown
    assert shown.endswith("401 Unauthorized (token ****, auth ****)")


def test_a_secret_inside_a_longer_one_leaves_nothing_of_the_longer_shown() -> None:
    shown = masked("login tocsin-mailer refused", ("tocsin", "tocsin-mailer"))
    assert shown == "login **** refused"


def test_words_too_short_to_be_a_secret_are_kept() -> None:
    assert masked("port 25 refused", ("25", None, "")) == "port 25 refused"
