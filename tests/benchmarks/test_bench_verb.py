"""`modelgate bench ...` runs the benchmark harness of the source checkout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli.bench_command import SOURCE_ROOT, harness_root
from gateway.cli.output import CLIError


def modelgate(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli.main", *argv],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
def test_every_argument_reaches_the_harness_options_included():
    shown = modelgate("bench", "--help")
    assert shown.returncode == 0, shown.stderr
    assert "python -m benchmarks" in shown.stdout and "--scenarios" in shown.stdout
    refused = modelgate("bench", "--scenarios", "no-such-scenario")
    assert refused.returncode == 2
    assert "unknown scenario(s) no-such-scenario" in refused.stderr


def test_the_verb_is_listed():
    listed = modelgate("--help")
    assert listed.returncode == 0 and "bench" in listed.stdout


def test_the_harness_is_found_in_this_checkout_and_only_there(tmp_path: Path):
    assert harness_root() == SOURCE_ROOT
    assert (SOURCE_ROOT / "benchmarks" / "__main__.py").is_file()
    with pytest.raises(CLIError, match="source checkout"):
        harness_root(tmp_path)
