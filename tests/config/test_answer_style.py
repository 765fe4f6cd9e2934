"""ANSWER_STYLE: the answer style where nobody chose one, validated once at start-up."""

from __future__ import annotations

import pytest

from bot.config.settings import ConfigError, load_settings

BASE = {"DISCORD_TOKEN": "t.o.k", "GOOGLE_API_KEY": "k"}


def test_the_default_style_is_answer() -> None:
    assert load_settings(BASE, dotenv_path=None).answer_style == "answer"


@pytest.mark.parametrize(("raw", "style"), [("tutor", "tutor"), (" Steps ", "steps")])
def test_a_style_can_be_chosen(raw: str, style: str) -> None:
    assert load_settings({**BASE, "ANSWER_STYLE": raw}, dotenv_path=None).answer_style == style


def test_an_unknown_style_stops_start_up_naming_the_setting_and_the_choices() -> None:
    with pytest.raises(ConfigError, match=r"ANSWER_STYLE must be 'answer' or 'steps' or 'tutor'"):
        load_settings({**BASE, "ANSWER_STYLE": "hints"}, dotenv_path=None)
