"""The README's two set-up commands are what CI runs (``.ci/run`` reads them from README.md), and they work
on a system Python that refuses ``pip install`` outside a virtual environment (PEP 668)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / ".ci" / "run"


def readme_blocks() -> dict[str, list[str]]:
    """marker name → the lines of the sh block that follows ``<!-- ci:<name> ... -->``."""
    text = (ROOT / "README.md").read_text()
    return {m.group(1): m.group(2).strip().splitlines()
            for m in re.finditer(r"^<!-- ci:([\w-]+)[^\n]*-->\n```sh\n(.*?)^```$", text, re.M | re.S)}


def ci_print(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(cwd / ".ci" / "run"), "--print"], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def test_ci_runs_the_readme_commands_verbatim():
    blocks = readme_blocks()
    assert set(blocks) == {"install-and-run", "test"}
    assert all(len(lines) == 1 for lines in blocks.values())  # one command each, as .ci/run requires
    res = ci_print(ROOT)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [blocks["install-and-run"][0], blocks["test"][0]]


def test_set_up_commands_use_a_virtual_environment():
    first, second = (readme_blocks()[k][0] for k in ("install-and-run", "test"))
    for cmd in (first, second):
        steps = cmd.split(" && ")
        assert steps[0] == "python3 -m venv .venv"  # the machine's python3 only makes the venv ...
        for step in steps[1:]:
            assert step.startswith(".venv/bin/"), step  # ... everything after runs inside it (PEP 668)
    assert ".venv/bin/python -m pip install -e ." in first and first.endswith("liqmap --demo")
    assert '.venv/bin/python -m pip install -e ".[test]"' in second and second.endswith("-m pytest -q")


def test_ci_refuses_a_readme_without_the_marked_commands(tmp_path):
    (tmp_path / ".ci").mkdir()
    shutil.copy(CI, tmp_path / ".ci" / "run")
    readme = (ROOT / "README.md").read_text()
    (tmp_path / "README.md").write_text(readme.replace("<!-- ci:test", "<!-- moved"))
    res = ci_print(tmp_path)
    assert res.returncode == 2 and "README.md" in res.stderr and len(res.stderr.splitlines()) == 1
    # and a first command that does not end with the demo (CI would not know which part installs)
    (tmp_path / "README.md").write_text(readme.replace(" && .venv/bin/liqmap --demo", ""))
    res = ci_print(tmp_path)
    assert res.returncode == 2 and "liqmap --demo" in res.stderr
