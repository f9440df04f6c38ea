"""Every on/off setting is read by one parser (``settings.parse_flag``): the environment switches
(``CANVAS_ASPEN_PRELOAD``, ``CANVAS_ASPEN_DATA_DOCS``), the hooks' Connection extras and the
trigger form's flags accept the same spellings and refuse the same things."""

from __future__ import annotations

import logging

import pytest

from canvas_aspen import executor_preload, run_params, validation
from canvas_aspen.settings import env_flag, parse_flag

ON = [True, 1, 1.0, "on", "ON", " true ", "True", "1", "yes", "Y", "t"]
OFF = [False, 0, 0.0, "off", "Off", "false", " FALSE", "0", "no", "n", "F"]
REFUSED = ["maybe", "", " ", "2", "enabled", "tru", 2, -1, 0.5, None, [], {}]


@pytest.mark.parametrize(
    "value, expected", [(v, True) for v in ON] + [(v, False) for v in OFF] + [(v, None) for v in REFUSED]
)
def test_on_off_parser_accepts_the_usual_spellings_and_refuses_anything_else(value, expected):
    if expected is None:
        with pytest.raises(ValueError, match="must be true or false"):
            parse_flag(value)
    else:
        assert parse_flag(value) is expected


def test_an_environment_switch_unset_or_blank_takes_its_default_and_a_typo_keeps_it_with_a_warning(
    monkeypatch, caplog
):
    monkeypatch.delenv("CANVAS_ASPEN_SOME_SWITCH", raising=False)
    assert env_flag("CANVAS_ASPEN_SOME_SWITCH", True) is True
    monkeypatch.setenv("CANVAS_ASPEN_SOME_SWITCH", "  ")
    assert env_flag("CANVAS_ASPEN_SOME_SWITCH", False) is False
    monkeypatch.setenv("CANVAS_ASPEN_SOME_SWITCH", "No")
    assert env_flag("CANVAS_ASPEN_SOME_SWITCH", True) is False
    monkeypatch.setenv("CANVAS_ASPEN_SOME_SWITCH", "of")
    with caplog.at_level(logging.WARNING):
        assert env_flag("CANVAS_ASPEN_SOME_SWITCH", True) is True
    assert "CANVAS_ASPEN_SOME_SWITCH='of' is neither on nor off" in caplog.text and "stays on" in caplog.text


@pytest.mark.parametrize("word, on", [("n", False), ("F", False), ("off", False), ("y", True), ("", True)])
def test_every_on_off_setting_reads_the_same_spellings(monkeypatch, word, on):
    monkeypatch.setenv(executor_preload.PRELOAD_ENV, word)
    monkeypatch.setenv(validation.DATA_DOCS_ENV, word)
    assert executor_preload.enabled() is on
    assert validation.data_docs_enabled() is on
    if word:
        assert run_params.normalise({"dry_run": word})["dry_run"] is on
