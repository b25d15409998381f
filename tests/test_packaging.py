"""A regular (non-editable) install carries every bundled theme, and the loader finds them there.

The themes' single source is the top-level ``themes/``; ``liqmap/ui/bundled_themes`` links to it and is
listed in pyproject's package-data, so a wheel holds real copies under ``liqmap/ui/bundled_themes/``.

Building offline: ``pip wheel --no-build-isolation`` needs the ``wheel`` package in this interpreter (a
clean CI machine has it only inside pip's isolated build environment, which needs the network). So the
test builds a real wheel when ``wheel`` is importable and otherwise runs setuptools' ``build_py`` — the step
a wheel build uses to choose the package's files, from the same pyproject — into a directory. Either way it
then imports the built package from there, away from the repository, and asks the loader for its themes.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THEMES = ("colorblind", "dark", "light", "mono")


def copy_project(dst: Path) -> Path:
    """What a build reads, copied so that build artefacts (build/, *.egg-info) never land in the checkout."""
    src = dst / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / f, src / f)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "liqmap", src / "liqmap", symlinks=True, ignore=ignore)
    shutil.copytree(ROOT / "themes", src / "themes", ignore=ignore)
    return src


def build(tmp: Path) -> tuple[Path, list[str]]:
    """(directory the built package can be imported from, files it holds relative to it)."""
    src = copy_project(tmp)
    out = tmp / "out"
    if importlib.util.find_spec("wheel") is not None:
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "--no-index", "-w", str(out), str(src)], check=True, capture_output=True, timeout=300)
        whl = next(out.glob("liqmap-*.whl"))
        with zipfile.ZipFile(whl) as z:
            names = z.namelist()
            z.extractall(tmp / "site")
        return tmp / "site", names
    subprocess.run([sys.executable, "-c", "import setuptools; setuptools.setup()", "-q", "build_py",
                    "--build-lib", str(out)], cwd=src, check=True, capture_output=True, timeout=300)
    names = [p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()]
    return out, names


def test_built_package_carries_every_theme_and_the_loader_finds_them(tmp_path):
    site, names = build(tmp_path)
    for t in THEMES:
        assert f"liqmap/ui/bundled_themes/{t}.toml" in names
    assert "liqmap/ui/liqmap.tcss" in names
    assert not any(n.startswith("themes/") for n in names)  # inside the package, not a top-level folder
    # Real copies with the themes' content, not links back into the checkout.
    copy = site / "liqmap" / "ui" / "bundled_themes" / "light.toml"
    assert not copy.is_symlink() and copy.read_bytes() == (ROOT / "themes" / "light.toml").read_bytes()
    # The installed package, imported from the build with no top-level themes/ beside it.
    assert not (site / "themes").exists()
    probe = ("import liqmap.ui.themes as t; print(t.__file__); print(t.builtin_dir()); "
             "print(','.join(t.builtin_names())); print(t.resolve('mono')[0].path)")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(PYTHONPATH=str(site), XDG_CONFIG_HOME=str(tmp_path / "no-config"))
    res = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {probe}"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    module, bdir, listed, mono = res.stdout.splitlines()
    assert module.startswith(str(site))  # the built copy, not the checkout
    assert bdir == str(site / "liqmap" / "ui" / "bundled_themes")
    assert listed == ",".join(THEMES)
    assert mono.startswith(str(site))


def test_checkout_loader_lists_every_bundled_theme():
    from liqmap.ui.themes import builtin_dir, builtin_names, discover

    assert builtin_names() == list(THEMES)
    # In the checkout the resource folder is the link to the top-level themes/: one source, same files.
    assert Path(str(builtin_dir())).resolve() == (ROOT / "themes").resolve()
    # Without the link (a checkout that does not keep symlinks), the top-level folder is read directly.
    assert sorted(discover({"XDG_CONFIG_HOME": os.devnull}, builtin=ROOT / "themes")) == list(THEMES)
