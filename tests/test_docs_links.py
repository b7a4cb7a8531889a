"""Comments and docstrings cite documents that exist in the repository, and nothing else.

Scans the comments and string literals (docstrings, CLI help) of every Python file: the
product packages may not cite documents kept outside the repository, and every
``docs/*.md`` path cited anywhere in code must exist, with the quoted section or ``#anchor``
that follows it, if any.
"""

from __future__ import annotations

import io
import re
import tokenize
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("gateway", "registry", "converters")
CODE = (*PRODUCT, "benchmarks", "tests", "scripts")

FORBIDDEN = re.compile(r"design\.md|pitfalls|lifecycle[ -]guide", re.IGNORECASE)
# docs/NAME.md, optionally followed by #anchor or by a quoted section: ', "S"', ' ("S"', ' "S"'
CITATION = re.compile(r'docs/([\w.-]+\.md)(?:#([\w-]+)|,?\s+\(?"([^"\n]+)")?')


def _texts(source: str) -> Iterator[tuple[int, str]]:
    """(line, text) of every comment and string literal of ``source``."""
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type in (tokenize.COMMENT, tokenize.STRING):
            yield tok.start[0], tok.string


def _python_files(folders: tuple[str, ...]) -> list[Path]:
    """Python files under ``folders``, except this one (its examples are broken on purpose)."""
    here = Path(__file__).resolve()
    return sorted(
        p for folder in folders for p in (ROOT / folder).rglob("*.py") if p.resolve() != here
    )


def _headings(doc: Path) -> list[str]:
    return [
        " ".join(line.lstrip("#").split()).lower()
        for line in doc.read_text(encoding="utf-8").splitlines()
        if line.startswith("#")
    ]


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading).replace(" ", "-")


def forbidden_citations(source: str) -> list[str]:
    return [
        f"line {line}: {FORBIDDEN.search(text)[0]!r}"
        for line, text in _texts(source)
        if FORBIDDEN.search(text)
    ]


def broken_citations(source: str, docs: Path) -> list[str]:
    problems = []
    for line, text in _texts(source):
        for match in CITATION.finditer(text):
            name, anchor, section = match.groups()
            doc = docs / name
            if not doc.is_file():
                problems.append(f"line {line}: docs/{name} does not exist")
                continue
            headings = _headings(doc)
            if anchor is not None and anchor.lower() not in {_slug(h) for h in headings}:
                problems.append(f"line {line}: docs/{name} has no heading #{anchor}")
            if section is not None:
                wanted = " ".join(section.split()).lower()
                if not any(h.startswith(wanted) for h in headings):
                    problems.append(f"line {line}: docs/{name} has no section {section!r}")
    return problems


@pytest.mark.parametrize("path", _python_files(PRODUCT), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_citation_of_documents_outside_the_repository(path: Path) -> None:
    assert forbidden_citations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", _python_files(CODE), ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_docs_and_sections_exist(path: Path) -> None:
    assert broken_citations(path.read_text(encoding="utf-8"), ROOT / "docs") == []


def test_the_product_cites_docs_at_all() -> None:
    """Guards the scan itself: the rewritten comments are found as citations."""
    cited = {
        m[1]
        for path in _python_files(PRODUCT)
        for _, text in _texts(path.read_text(encoding="utf-8"))
        for m in CITATION.finditer(text)
    }
    assert {"contracts.md", "lifecycle.md", "performance-notes.md"} <= cited


@pytest.mark.parametrize(
    "source",
    [
        '"""Thresholds as in design.md."""\n',
        "x = 1  # measured, see Pitfalls\n",
        'HELP = "the Lifecycle Guide\'s layout"\n',
        "# see the lifecycle-guide\n",
    ],
)
def test_forbidden_citations_are_caught(source: str) -> None:
    assert len(forbidden_citations(source)) == 1


def test_forbidden_words_in_code_are_not_citations() -> None:
    assert forbidden_citations("design_md = 1\npitfalls = design_md\n") == []


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("# see docs/missing.md\n", "docs/missing.md does not exist"),
        ('"""(docs/lifecycle.md, "No such section")."""\n', "no section 'No such section'"),
        ('# docs/contracts.md "Nope": name -> labels\n', "no section 'Nope'"),
        ('"""See docs/contracts.md#no-such-anchor."""\n', "no heading #no-such-anchor"),
    ],
)
def test_broken_citations_are_caught(source: str, problem: str) -> None:
    found = broken_citations(source, ROOT / "docs")
    assert len(found) == 1 and problem in found[0]


@pytest.mark.parametrize(
    "source",
    [
        '"""(docs/lifecycle.md, "When to retrain")."""\n',
        "# docs/performance-notes.md\n",
        '"""docs/contracts.md ("Statistics semantics" and "Reference distributions")."""\n',
        '"""Lineage (docs/contracts.md#lineage)."""\n',
        '"""(docs/contracts.md, "Routing\n    precedence")."""\n',
    ],
)
def test_valid_citations_pass(source: str) -> None:
    assert broken_citations(source, ROOT / "docs") == []
