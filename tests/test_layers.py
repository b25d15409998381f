"""The core never imports the UI, the feeds or the config: checked by import-linter's contracts in pyproject.toml."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    cmd = [str(lint)] if lint.exists() else [sys.executable, "-m", "importlinter.cli"]
    res = subprocess.run(cmd + ["--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert ", 0 broken" in res.stdout and "Contracts: 0 kept" not in res.stdout
    assert "the runtime (the one composition root) never imports a front end KEPT" in res.stdout
    assert "core never imports config KEPT" in res.stdout


def test_core_modules_import_without_textual_loaded():
    code = (
        "import sys, pkgutil, importlib, liqmap.core as c\n"
        "for m in pkgutil.walk_packages(c.__path__, 'liqmap.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "print('textual' in sys.modules)\n"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "False"
