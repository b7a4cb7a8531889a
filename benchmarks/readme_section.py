"""Replace one generated section of ``benchmarks/README.md``: the text between
``<!-- name:start -->`` and ``<!-- name:end -->``; the rest of the file is kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

README = Path(__file__).with_name("README.md")


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with the section ``name`` replaced by ``body``; ValueError without markers."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in text or end not in text:
        raise ValueError(f"README has no {start} ... {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}{end}{tail}"


def write_section(name: str, body: str, readme: Path = README) -> None:
    """Replace the section ``name`` of the file ``readme`` with ``body``."""
    readme.write_text(replace_section(readme.read_text(), name, body))


def publish(result: dict[str, Any], out: Path, name: str, body: str, *, report: bool) -> None:
    """Write ``result`` as JSON to ``out``, print ``body`` and, with ``report``, make it the
    README section ``name``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    print(body)
    if report:
        write_section(name, body)
