import subprocess
import sys

from liqmap.cli import build_parser, flag_overrides


def run(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "liqmap", *args], capture_output=True, text=True, timeout=timeout)


def test_help_lists_whole_command_surface():
    res = run("--help")
    assert res.returncode == 0
    out = res.stdout
    for word in ("--demo", "--replay", "record", "replay", "--headless", "--report", "collect", "doctor",
                 "export", "--assets", "--venues", "--mode", "--timeframe", "--theme", "--color",
                 "--no-mouse", "--config", "--data-dir"):
        assert word in out, word


def test_console_script_is_installed():
    """pip puts the ``liqmap`` script beside the interpreter that installed it (the venv's bin/), whether or
    not that directory is on PATH (``venv/bin/python -m pytest`` without activating the venv)."""
    import sysconfig
    from pathlib import Path

    exe = Path(sysconfig.get_path("scripts")) / "liqmap"
    assert exe.is_file(), f"the liqmap console script is not installed in {exe.parent}"
    res = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and "liqmap" in res.stdout


def test_flags_map_onto_settings():
    args = build_parser().parse_args(["--mode", "raw", "--assets", "btc,eth", "--no-mouse", "--timeframe", "4h"])
    o = flag_overrides(args)
    assert o["app"] == {"mode": "raw", "timeframe": "4h", "mouse": False}
    assert o["universe"]["assets"] == ["BTC", "ETH"]


def test_subcommand_accepts_common_flags_after_it():
    args = build_parser().parse_args(["replay", "f.gz", "--headless", "--report", "o.json", "--assets", "BTC"])
    assert args.command == "replay" and args.headless and args.report == "o.json" and args.assets == "BTC"


def test_unknown_mode_is_rejected_by_argparse():
    res = run("--mode", "fancy")
    assert res.returncode == 2 and "invalid choice" in res.stderr


def test_unknown_asset_stops_with_one_line_naming_close_matches():
    res = run("--demo", "--asset", "PEPEE")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "--asset 'PEPEE'" in lines[0] and "did you mean PEPE" in lines[0], res.stderr


def test_a_universe_without_the_default_asset_starts_on_its_first_and_a_chosen_one_is_kept():
    from liqmap.config import load

    args = build_parser().parse_args(["collect", "--assets", "eth,sol"])
    assert load(None, overrides=flag_overrides(args))["app"]["asset"] == "ETH"
    args = build_parser().parse_args(["--assets", "eth,sol", "--asset", "sol"])
    assert load(None, overrides=flag_overrides(args))["app"]["asset"] == "SOL"
