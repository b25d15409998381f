import subprocess
import sys

import pytest

from liqmap import config
from liqmap.config import ConfigError, load


def write(tmp_path, text):
    p = tmp_path / "config.toml"
    p.write_text(text)
    return p


def test_defaults_have_65_assets_and_all_model_parameters(tmp_path):
    cfg = \
        load(None, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert len(cfg["universe"]["assets"]) == 65
    assert len(set(cfg["universe"]["assets"])) == 65
    m = cfg["model"]
    for key in ("leverage_tiers", "leverage_weights", "taker_alpha", "half_life_hours", "reconcile_buckets"):
        assert key in m
    assert cfg["app"]["mode"] == "hybrid"


def test_layers_in_order_file_env_flags(tmp_path):
    p = write(tmp_path, '[app]\nmode = "raw"\ntimeframe = "5m"\n[model]\nhalf_life_hours = 12\n')
    env = {"LIQMAP_APP__TIMEFRAME": "1h", "LIQMAP_MODEL__LEVERAGE_TIERS": "5,10"
           , "LIQMAP_MODEL__LEVERAGE_WEIGHTS": "0.5,0.5"}
    cfg = load(p, environ=env)
    assert cfg["app"]["mode"] == "raw"  # file
    assert cfg["app"]["timeframe"] == "1h"  # env beats file
    assert cfg["model"]["half_life_hours"] == 12.0  # int accepted for float
    assert cfg["model"]["leverage_tiers"] == [5.0, 10.0]
    cfg = load(p, environ=env, overrides={"app": {"timeframe": "4h"}})
    assert cfg["app"]["timeframe"] == "4h"  # flag beats env


def test_xdg_config_home_is_read(tmp_path):
    d = tmp_path / "liqmap"
    d.mkdir()
    (d / "config.toml").write_text('[app]\nmode = "synthetic"\n')
    cfg = load(None, environ={"XDG_CONFIG_HOME": str(tmp_path)})
    assert cfg["app"]["mode"] == "synthetic"


@pytest.mark.parametrize("text, key, problem", [
    ('[app]\nmode = "fancy"\n', "app.mode", "not one of"),
    ('[app]\nhz = "fast"\n', "app.hz", "expected a number"),
    ('[model]\nhalf_lif_hours = 3\n', "model.half_lif_hours", "unknown setting"),
    ('[model]\nleverage_weights = [1, 2]\n', "model.leverage_weights", "one weight per"),
    ('[model]\nresting_leverage_weights = [1]\n', "model.resting_leverage_weights", "one non-negative weight per"),
    ('[model]\nresting_leverage_tiers = [1, 2, 3, 4]\n', "model.resting_leverage_tiers", "out of range"),
    ('[model]\nresting_share = 2\n', "model.resting_share", "out of range"),
    ('[universe]\nvenues = ["ftx"]\n', "universe.venues", "unknown venue"),
    ('[app\nmode = 1\n', "", "not valid TOML"),
])
def test_bad_config_names_file_key_and_problem(tmp_path, text, key, problem):
    p = write(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load(p, environ={})
    msg = str(e.value)
    assert str(p) in msg and key in msg and problem in msg
    assert "\n" not in msg


def test_bad_env_value_is_refused():
    with pytest.raises(ConfigError, match="LIQMAP_APP__HZ"):
        load(None, environ={"XDG_CONFIG_HOME": "/nonexistent", "LIQMAP_APP__HZ": "soon"})
    with pytest.raises(ConfigError, match="unknown setting"):
        load(None, environ={"XDG_CONFIG_HOME": "/nonexistent", "LIQMAP_NOPE__X": "1"})


def test_cli_exits_2_with_one_line_on_bad_config(tmp_path):
    p = write(tmp_path, '[model]\nhalf_life_hours = "long"\n')
    res = subprocess.run([sys.executable, "-m", "liqmap", "--config", str(p), "doctor"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1
    assert str(p) in lines[0] and "model.half_life_hours" in lines[0]


def test_data_dir_default_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert config.default_data_dir() == tmp_path / "liqmap"


def test_readme_config_example_is_valid(tmp_path):
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = re.search(r"```toml\n(.*?)```", readme, re.S).group(1)
    cfg = load(write(tmp_path, example), environ={})
    assert cfg["model"]["half_life_hours"] == 24.0


def test_readme_has_exactly_two_setup_commands_and_ci_runs_the_test_one():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    setup = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    cmds = re.findall(r"```sh\n(.*?)\n```", setup, re.S)
    assert len(cmds) == 2 and cmds[0].endswith("liqmap --demo")
    import subprocess

    # .ci/run takes both commands from the README (tests/test_setup_commands.py); --print shows what it runs
    ci = subprocess.run(["bash", str(root / ".ci" / "run"), "--print"], capture_output=True, text=True, timeout=60)
    assert ci.stdout.splitlines() == cmds


def test_report_parameter_out_of_range_is_refused_at_load(tmp_path):
    p = write(tmp_path, "[reports.walls]\nk_median = -1.0\n")
    with pytest.raises(ConfigError) as e:
        load(p, environ={})
    assert str(p) in str(e.value) and "reports.walls.k_median" in str(e.value)
