"""Every citation of the project's docs points at a page and a section that exist.

Code, tests, benchmarks, tools, the README and the docs cite the reference pages as ``docs/<page>.md §N``
(``§N.M`` for a subsection, ``§N step K`` for a numbered step, several sections as ``§2.2, §3.1``). A page
cites its own sections as a bare ``§N``. A ``§`` anywhere else, or a citation of material that is not in
the repository (the old ``reference/methods.md``, ``venues.md``, ``DESIGN``), fails here: a reader of the code
must be able to follow every citation.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# "docs/model.md §3 step 10", "docs/venues.md §2.2, §3.1", "docs/architecture.md §10–11", "docs/recording.md"
SECTION = r"§\s?\d+(?:\.\d+)*(?:\s+step\s+\d+)?"
CITATION = re.compile(rf"docs/([\w.-]+\.md)((?:\s*(?:,|;|and|–|-)?\s*{SECTION}|–\d+(?:\.\d+)*)*)")
SECTION_NUM = re.compile(r"§\s?(\d+(?:\.\d+)*)(?:\s+step\s+(\d+))?|–(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{2,4} (\d+(?:\.\d+)*)\.? ", re.M)
# what the old, out-of-repository references looked like
STALE = re.compile(r"reference/(?:methods|venues)\.md|\bDESIGN(?:\.md)?\b|(?<!docs/)\bvenues\.md\b|\b[Mm]ethods §")


def sources() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "pyproject.toml", ROOT / ".ci" / "run"]
    for top in ("liqmap", "tests", "benchmarks", "tools"):
        files += [p for p in (ROOT / top).rglob("*") if p.suffix in (".py", ".sh", ".md", ".toml")
                  and "data" not in p.relative_to(ROOT).parts]
    files += sorted(DOCS.glob("*.md"))
    return [p for p in files if p.is_file() and p.name != Path(__file__).name]


def sections(page: Path) -> dict[str, str]:
    """Section number → its text (up to the next heading of any numbered section)."""
    text = page.read_text()
    heads = list(HEADING.finditer(text))
    return {m.group(1): text[m.end():(heads[i + 1].start() if i + 1 < len(heads) else len(text))]
            for i, m in enumerate(heads)}


def problems(text: str, where: str, own_page: Path | None = None) -> list[str]:
    """Citations in ``text`` that point nowhere, stale references, and stray ``§`` outside a citation."""
    out: list[str] = []
    covered = [False] * len(text)
    cache: dict[Path, dict[str, str]] = {}

    def check(page: Path, num: str, step: str | None, what: str) -> None:
        secs = cache.setdefault(page, sections(page))
        if num not in secs:
            out.append(f"{where}: {what}: no section {num} in docs/{page.name}")
        elif step and not re.search(rf"^\s*{step}\. ", secs[num], re.M):
            out.append(f"{where}: {what}: no step {step} in docs/{page.name} §{num}")

    for m in CITATION.finditer(text):
        page = DOCS / m.group(1)
        for i in range(m.start(), m.end()):
            covered[i] = True
        if not page.is_file():
            out.append(f"{where}: {m.group(0)!r}: docs/{m.group(1)} does not exist")
            continue
        for s in SECTION_NUM.finditer(m.group(2)):
            check(page, s.group(1) or s.group(3), s.group(2), repr(m.group(0)))
    for m in re.finditer(rf"{SECTION}", text):
        if covered[m.start()]:
            continue
        if own_page is None:
            out.append(f"{where}: {m.group(0)!r} cites no page (write docs/<page>.md §N)")
        else:
            n = SECTION_NUM.match(m.group(0))
            check(own_page, n.group(1), n.group(2), repr(m.group(0)))
    for m in STALE.finditer(text):
        out.append(f"{where}: {m.group(0)!r}: not in the repository (cite docs/<page>.md §N)")
    return out


def test_every_citation_points_at_an_existing_page_and_section():
    found = []
    n_citations = 0
    for path in sources():
        text = path.read_text(errors="replace")
        own = path if path.parent == DOCS else None
        n_citations += len(CITATION.findall(text))
        for lineno, line in enumerate(text.splitlines(), 1):
            found += problems(line, f"{path.relative_to(ROOT)}:{lineno}", own)
    assert not found, "\n".join(found)
    assert n_citations > 40  # the code really cites the docs (the scan found them)


def test_the_reference_pages_exist_with_their_sections():
    for page, nums in {"model.md": ["1", "2", "3", "4", "5", "6"],
                       "detectors.md": ["1", "2", "3", "4", "5", "6", "7"],
                       "venues.md": ["1", "2.1", "2.2", "2.3", "2.4", "2.5", "3.1", "4", "5.1", "5.2"],
                       "architecture.md": [str(i) for i in range(1, 12)]}.items():
        assert set(nums) <= set(sections(DOCS / page)), page
    # the model's ten steps are numbered items of §3 (code cites "docs/model.md §3 step 10")
    steps = sections(DOCS / "model.md")["3"]
    assert all(re.search(rf"^\s*{k}\. \*\*", steps, re.M) for k in range(1, 11))


def test_the_check_catches_missing_pages_sections_steps_and_stale_references():
    assert problems("see docs/model.md §3 step 10 and docs/venues.md §2.2, §3.1", "x") == []
    assert problems("(docs/architecture.md §10–11)", "x") == []
    assert "no section 9" in problems("docs/model.md §9", "x")[0]
    assert "no section 2.9" in problems("docs/venues.md §2.2, §2.9", "x")[0]
    assert "no step 99" in problems("docs/model.md §3 step 99", "x")[0]  # (step 12 exists: the dollar scale)
    assert "does not exist" in problems("docs/nothing.md §1", "x")[0]
    assert "cites no page" in problems("as in §3.5", "x")[0]
    for stale in ("reference/methods.md §2.4", "DESIGN §6", "venues.md §5.1", "methods §3.5"):
        assert problems(stale, "x"), stale
    # a docs page citing its own sections
    assert problems("see §2.5", "x", DOCS / "venues.md") == []
    assert "no section 7" in problems("see §7", "x", DOCS / "venues.md")[0]


def test_readme_pictures_exist_and_are_the_tools_pngs():
    """The README shows the map as PNGs (issue 20 item 8): every image it links is in the repository, is a PNG,
    and has the size ``tools/pictures.py`` draws (8×18 pixels per terminal cell), one per mode."""
    import struct

    text = (ROOT / "README.md").read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    names = {Path(p).stem for p in links}
    assert {"raw", "synthetic", "heatmap", "hybrid"} <= names, names
    for rel in links:
        png = (ROOT / rel).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n", rel
        width, height = struct.unpack(">II", png[16:24])
        assert width % 8 == 0 and height % 18 == 0 and width // 8 >= 80 and height // 18 >= 24, (rel, width, height)


def test_every_key_of_the_app_is_in_the_readme():
    """The README's key table names every binding the app shows or hides (the footer overflows at 80 columns,
    so the README and the help screen are where a user finds the rest)."""
    import re

    from liqmap.ui.app import LiqmapApp

    text = (ROOT / "README.md").read_text()
    table = text[text.index("| key | action |"):]
    table = table[:table.index("\n\n")]
    cells = set(re.findall(r"`([^`]+)`", table))
    aliases = {"question_mark": "?", "left_square_bracket": "[", "right_square_bracket": "]", "minus": "-",
               "plus": "+", "enter": "Enter", "slash": "/", "equals_sign": "+"}
    missing = []
    for b in LiqmapApp.BINDINGS:
        if b.key in ("up", "down", "left", "right"):
            assert "arrows" in table
            continue
        keys = [aliases.get(k, k) for k in b.key.split(",")]
        if not any(k in cells or any(k in c.split() for c in cells) for k in keys):
            missing.append(b.key)
    assert not missing, f"keys missing from the README's key table: {missing}"
