"""Comments and docs cite docs/original-behaviour.md by heading; every cited heading must exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "original-behaviour.md"
SCANNED = [ROOT / "README.md", *(ROOT / d for d in ("src", "tests", "docs", "examples", "benchmarks"))]


def _files():
    for top in SCANNED:
        paths = [top] if top.is_file() else sorted(top.rglob("*"))
        for p in paths:
            if p.suffix in (".py", ".md", ".json", ".sh", ".toml") and p.is_file() and p != Path(__file__):
                yield p


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


# `docs/original-behaviour.md, "A"`, `..., "A", "B" and "C"`, `..., "A" to "B"`
CITATION = re.compile(r'original-behaviour\.md, ((?:"[^"]+"(?:, | and | to )?)+)')
HEADINGS = [
    line[3:].strip() for line in DOC.read_text(encoding="utf-8").splitlines() if line.startswith("## ")
]


def test_headings_are_unique():
    assert len(HEADINGS) == len(set(HEADINGS)) > 20


def test_every_cited_heading_exists():
    cited = 0
    for path in _files():
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            where = f"{path.relative_to(ROOT)}:{n}"
            for names in CITATION.findall(line):
                for name in re.findall(r'"([^"]+)"', names):
                    assert name in HEADINGS, f"{where}: no heading {name!r}"
                    cited += 1
            for anchor in re.findall(r"original-behaviour\.md#([\w-]+)", line):
                assert anchor in {_slug(h) for h in HEADINGS}, f"{where}: no anchor #{anchor}"
                cited += 1
    assert cited > 40


def test_no_section_numbers_of_an_outside_reference():
    offenders = [str(p.relative_to(ROOT)) for p in _files() if "\u00a7" in p.read_text(encoding="utf-8")]
    assert offenders == []
