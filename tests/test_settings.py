"""damgraph.settings: reading a setting from text and setting a config."""
import pytest

from damgraph import LinkPredConfig
from damgraph.settings import read_setting, with_settings


def test_with_settings_ignores_none_and_checks_the_rest():
    config = LinkPredConfig()
    assert with_settings(config, dim=None, lam=None) == config
    assert with_settings(config, dim=8, lr=None).dim == 8 and config.dim == 128
    with pytest.raises(ValueError, match="^dim must be >= 1, got 0$"):
        with_settings(config, dim=0)


def test_read_setting_reads_each_kind_and_names_the_setting():
    assert read_setting(LinkPredConfig, "penalty_edges", "4096") == 4096
    assert read_setting(LinkPredConfig, "hidden", "None") is None
    assert read_setting(LinkPredConfig, "lam", "0.03") == 0.03
    assert read_setting(LinkPredConfig, "rewind", "false") is False
    assert read_setting(LinkPredConfig, "rewind_gains", "one") == "one"
    with pytest.raises(ValueError, match="rewind must be true or false, got 'maybe'"):
        read_setting(LinkPredConfig, "rewind", "maybe")
    with pytest.raises(ValueError, match="unknown setting 'lamda'"):
        read_setting(LinkPredConfig, "lamda", "1")
