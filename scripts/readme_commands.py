"""The README's quickstart commands, read from README.md, and a check of the curl answers.

    python3 scripts/readme_commands.py first [README]     the quickstart block's first line
    python3 scripts/readme_commands.py curls [README]     the curl lines of the quickstart
    python3 scripts/readme_commands.py answer URL FILE    is FILE a sane JSON answer of URL

``scripts/check_install.sh`` runs what this prints verbatim, so the install check follows
the README: a changed quickstart is checked as written, and a README out of step with the
product fails. Standard library only (it runs before anything is installed).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
from pathlib import Path

DEFAULT_README = Path(__file__).resolve().parents[1] / "README.md"
FENCE = re.compile(r"^```(?P<lang>\S*)\s*$")


class ReadmeError(ValueError):
    """The README has no quickstart laid out as expected."""


def quickstart(text: str) -> str:
    """The text of the ``## Quickstart`` section (up to the next ``## `` heading)."""
    match = re.search(r"^## Quickstart\s*$(?P<body>.*?)(?=^## |\Z)", text, re.M | re.S)
    if match is None:
        raise ReadmeError("README.md has no '## Quickstart' section")
    return match["body"]


def code_blocks(section: str) -> list[list[str]]:
    """The fenced code blocks of ``section``, each as its lines."""
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in section.splitlines():
        if FENCE.match(line.strip()):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def first_command(text: str) -> str:
    blocks = code_blocks(quickstart(text))
    lines = [line.strip() for line in (blocks[0] if blocks else []) if line.strip()]
    if not lines:
        raise ReadmeError("the quickstart has no code block with a command")
    return lines[0]


def curl_commands(text: str) -> list[str]:
    curls = [
        line.strip()
        for block in code_blocks(quickstart(text))
        for line in block
        if line.strip().startswith("curl ")
    ]
    if not curls:
        raise ReadmeError("the quickstart shows no curl command")
    return curls


def sent_instances(command: str) -> int | None:
    """How many rows the curl command's ``-d`` body sends (None: no body)."""
    words = shlex.split(command)
    for flag, value in zip(words, words[1:], strict=False):
        if flag in ("-d", "--data", "--data-raw", "--data-binary"):
            return len(json.loads(value)["instances"])
    return None


def answer_problem(command: str, body: bytes) -> str | None:
    """Why ``body`` is not a sane answer to the curl ``command`` (None: it is)."""
    try:
        answer = json.loads(body)
    except ValueError:
        return f"not JSON: {body[:200]!r}"
    if not isinstance(answer, dict):
        return f"not a JSON object: {body[:200]!r}"
    if "error" in answer:
        return f"an error: {answer['error']}"
    url = next(word for word in shlex.split(command) if "/" in word and ":" in word)
    path = url.split("://", 1)[-1].partition("/")[2]
    rows = sent_instances(command)
    if path.startswith("predict/"):
        predictions = answer.get("predictions")
        if not isinstance(predictions, list) or len(predictions) != rows:
            return f"expected {rows} prediction(s), got {answer!r:.200}"
        if answer.get("model") not in (None, path.removeprefix("predict/")):
            return f"answered for another model: {answer.get('model')!r}"
    elif path.startswith("v2/models/"):
        name = path.removeprefix("v2/models/")
        if answer.get("name") != name or not answer.get("inputs") or not answer.get("outputs"):
            return f"expected the metadata of {name!r} with inputs and outputs, got {answer!r:.200}"
    return None


def main(argv: list[str]) -> int:
    try:
        if argv[:1] in (["first"], ["curls"]):
            readme = Path(argv[1]) if len(argv) > 1 else DEFAULT_README
            text = readme.read_text(encoding="utf-8")
            print(first_command(text) if argv[0] == "first" else "\n".join(curl_commands(text)))
            return 0
        if argv[:1] == ["answer"] and len(argv) == 3:
            problem = answer_problem(argv[1], Path(argv[2]).read_bytes())
            if problem:
                print(problem)
                return 1
            return 0
    except (OSError, ReadmeError, ValueError, KeyError) as exc:
        print(f"readme_commands: error: {exc}", file=sys.stderr)
        return 2
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
