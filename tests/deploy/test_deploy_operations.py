"""docs/operations.md: every `modelgate` command line parses, and the backup procedure works.

The backup block is run as written (only /data and /backup pointed at temporary folders)
against a registry built by the init container's script, while a reader holds it open, and
the restored copy is read back with the real CLI.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs/operations.md"


@pytest.fixture(scope="module")
def text() -> str:
    return DOC.read_text(encoding="utf-8")


def modelgate_lines(text: str) -> list[list[str]]:
    """The arguments (verb first) of every `modelgate ...` command in the doc's code."""
    found = []
    snippets = re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)
    snippets += re.findall(r"`(modelgate [^`]+)`", text)
    for snippet in snippets:
        for line in snippet.replace("\\\n", " ").splitlines():
            tokens = shlex.split(line, comments=True)
            for i, token in enumerate(tokens[:-1]):
                # `kubectl -n modelgate ...` names the namespace, not the program
                if token == "modelgate" and (i == 0 or tokens[i - 1] != "-n"):
                    found.append(tokens[i + 1 :])
                    break
    return found


def test_every_modelgate_command_in_the_doc_parses(text: str, cli_parser) -> None:
    commands = modelgate_lines(text)
    verbs = {c[0] for c in commands}
    assert {"traffic", "rollout", "rollback", "stage", "switch", "audit", "versions"} <= verbs
    assert {"drift", "health"} <= verbs
    for command in commands:
        args = cli_parser.parse_args(command)
        assert args.command == command[0], command


def test_doc_covers_the_issue(text: str) -> None:
    for heading in (
        "## Run a canary",
        "## Read the dashboard",
        "## Roll back",
        "## Rotate the admin token",
        "## Back up the registry",
    ):
        assert heading in text
    for needle in (
        "/admin/models/churn/traffic",
        "/admin/models/churn/rollout",
        "/admin/models/churn/rollback",
        "secretKeyRef",
        "MODELGATE_ADMIN_TOKEN",
        "kubectl -n modelgate rollout restart deploy/modelgate",
    ):
        assert needle in text, needle
    readme = (DOC.parents[1] / "deploy/README.md").read_text(encoding="utf-8")
    assert "docs/operations.md" in readme


def backup_script(text: str) -> str:
    block = text.split("<!-- backup-procedure -->", 1)[1].split("<!-- /backup-procedure -->")[0]
    (script,) = re.findall(r"```sh\n(.*?)```", block, flags=re.DOTALL)
    return script


@pytest.mark.slow
def test_backup_procedure_restores_a_working_registry(
    text: str, seeded_registry, tmp_path: Path
) -> None:
    assert seeded_registry.first.returncode == 0, seeded_registry.first.stderr
    data, backups = tmp_path / "data", tmp_path / "backup"
    shutil.copytree(seeded_registry.home, data)
    script = backup_script(text).replace("/data", str(data)).replace("/backup", str(backups))
    # a reader inside a transaction, as a serving gateway would be, does not block the backup
    reader = sqlite3.connect(data / "registry.db")
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM sqlite_master").fetchone()
    try:
        done = subprocess.run(
            ["/bin/sh", "-e", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": f"{os.path.dirname(sys.executable)}:/usr/bin:/bin"},
        )
    finally:
        reader.rollback()
        reader.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "ok"
    (snapshot,) = backups.iterdir()
    assert {p.name for p in snapshot.iterdir()} == {"registry.db", "artifacts"}
    originals = sorted(p.relative_to(data) for p in (data / "artifacts").rglob("*") if p.is_file())
    copies = sorted(
        p.relative_to(snapshot) for p in (snapshot / "artifacts").rglob("*") if p.is_file()
    )
    assert originals and originals == copies
    # restore into a fresh home and read it with the real CLI
    restored = tmp_path / "restored"
    shutil.copytree(snapshot, restored)
    listed = subprocess.run(
        [seeded_registry.executable, "versions", "churn", "--home", str(restored)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert "1.0.0" in listed.stdout and "1.1.0" in listed.stdout
