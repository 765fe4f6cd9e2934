"""METRICS_PORT and METRICS_HOST: off by default, validated, loopback unless told otherwise."""

from __future__ import annotations

import pytest

from bot.config.settings import ConfigError, load_settings

BASE = {"DISCORD_TOKEN": "abc.def.ghi", "GOOGLE_API_KEY": "g-key"}


def test_metrics_are_off_by_default_and_on_loopback_when_on() -> None:
    off = load_settings(BASE, dotenv_path=None)
    assert off.metrics_port is None and off.metrics_host == "127.0.0.1"
    assert load_settings({**BASE, "METRICS_PORT": "off"}, dotenv_path=None).metrics_port is None
    on = load_settings({**BASE, "METRICS_PORT": "9108"}, dotenv_path=None)
    assert (on.metrics_host, on.metrics_port) == ("127.0.0.1", 9108)
    anywhere = load_settings(
        {**BASE, "METRICS_PORT": "9108", "METRICS_HOST": "0.0.0.0"}, dotenv_path=None
    )
    assert anywhere.metrics_host == "0.0.0.0"


@pytest.mark.parametrize("raw", ["0", "65536", "http", "-1"])
def test_a_bad_metrics_port_names_the_variable(raw: str) -> None:
    with pytest.raises(ConfigError, match="METRICS_PORT"):
        load_settings({**BASE, "METRICS_PORT": raw}, dotenv_path=None)
