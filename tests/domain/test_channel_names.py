from datetime import date

import pytest

from bot.domain.channel_names import (
    incident_channel_name,
    is_valid_channel_name,
    slugify,
    with_suffix,
)

DAY = date(2026, 11, 26)


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("HighErrorRate api", "inc-20261126-7-higherrorrate-api"),
        ("Database Connection   Loss!!", "inc-20261126-7-database-connection-loss"),
        ("Café déjà vu", "inc-20261126-7-cafe-deja-vu"),
        ("Ошибка базы данных", "inc-20261126-7-alert"),
        ("数据库 down", "inc-20261126-7-down"),
        ("🔥🔥🔥", "inc-20261126-7-alert"),
        ("", "inc-20261126-7-alert"),
        ("snake_case_name", "inc-20261126-7-snake-case-name"),
    ],
)
def test_channel_name_is_readable_and_valid(title: str, expected: str) -> None:
    name = incident_channel_name(DAY, 7, title)
    assert name == expected
    assert is_valid_channel_name(name)


def test_a_200_character_alert_name_is_cut_to_80_without_a_trailing_hyphen() -> None:
    title = "VeryLongAlertName-" * 12
    assert len(title) > 200
    name = incident_channel_name(DAY, 123456, title)
    assert len(name) == 80 or (len(name) < 80 and not name.endswith("-"))
    assert name.startswith("inc-20261126-123456-verylongalertname-")
    assert not name.endswith("-")
    assert is_valid_channel_name(name)


def test_collision_suffixes_stay_within_80_characters_and_differ() -> None:
    base = incident_channel_name(DAY, 1, "x" * 200)
    names = [with_suffix(base, attempt) for attempt in range(12)]
    assert names[0] == base
    assert len(set(names)) == 12
    assert all(len(n) <= 80 and is_valid_channel_name(n) for n in names)
    assert names[1].endswith("-2") and names[11].endswith("-12")


def test_slug_folds_accents_and_drops_other_scripts() -> None:
    assert slugify("Zürich Ärger") == "zurich-arger"
    assert slugify("!!!") == "alert"
