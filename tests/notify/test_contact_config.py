"""`people:` and `notify:` in tocsin.yml, read by `tocsin config check`: a mistake is named with
its file and line, and a contact's URL (which may hold a token) is never printed."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import tocsin

TOKEN = "tk_9f8e7d6c5b4a"
PEOPLE = f"""\
people:
  U0123:
    contacts:
      push: "ntfy://{TOKEN}@ntfy.example.com/dana"
      hook: "json://hooks.example.com/{TOKEN}"
    rules:
      - {{after: 0s, notify: [slack]}}
      - {{after: 2m, notify: [push, hook]}}
"""


def check(tmp_path: Path, text: str) -> tuple[int, str, str]:
    (tmp_path / "tocsin.yml").write_text(text)
    result = tocsin("config", "check", "tocsin.yml", cwd=tmp_path)
    return result.returncode, result.stdout, result.stderr


def test_check_shows_each_contact_by_its_service_only(tmp_path: Path) -> None:
    code, out, err = check(tmp_path, PEOPLE)
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("people "))
    assert '"push": "ntfy://…"' in line and '"hook": "json://…"' in line
    assert TOKEN not in out + err


def test_mistakes_are_named_with_their_line_and_never_repeat_the_url(tmp_path: Path) -> None:
    code, _, err = check(tmp_path, PEOPLE.replace("ntfy://", "nfty://"))
    assert code == 2
    assert (
        "tocsin.yml:3: people.U0123.contacts: contact 'push': not a URL apprise can send to" in err
    )
    assert TOKEN not in err

    code, _, err = check(tmp_path, PEOPLE.replace("[push, hook]", "[push, sms]"))
    assert code == 2
    assert "people.U0123: rules name 'sms', which is not a contact (slack, push, hook)" in err

    email = PEOPLE.replace(f'"json://hooks.example.com/{TOKEN}"', '"email:dana@example.com"')
    code, _, err = check(tmp_path, email)
    assert code == 2
    assert "people.U0123.contacts.hook is an email contact: add notify.email" in err
