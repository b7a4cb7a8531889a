"""`modelgate bench ...`: the published load benchmark (``python -m benchmarks``).

The harness (wrk, the baseline servers, MLServer's own virtualenv, the plots) lives in
``benchmarks/`` of the source tree, not in the installed package, so the verb runs it from
the checkout this ``modelgate`` was installed from (``pip install -e .``) and passes every
argument through: ``modelgate bench --quick``, ``modelgate bench --scenarios batching``,
``modelgate bench --help``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from gateway.cli.extras import BENCH, require_extra
from gateway.cli.output import CLIError

SOURCE_ROOT = Path(__file__).resolve().parents[2]


def harness_root(root: Path = SOURCE_ROOT) -> Path:
    """The source checkout holding ``benchmarks/`` (CLIError when modelgate was installed
    from a wheel, without it)."""
    if not (root / "benchmarks" / "__main__.py").is_file():
        raise CLIError(
            "modelgate bench runs benchmarks/ from a source checkout: clone the repository and "
            "`pip install -e '.[bench]'` there (this modelgate was installed without it)"
        )
    return root


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run the load benchmark against MLServer and a hand-written server",
        description="Every argument goes to `python -m benchmarks` (see `modelgate bench --help`).",
        add_help=False,
    )
    parser.add_argument("arguments", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    parser.set_defaults(handler=run_bench)


def run_bench(args: argparse.Namespace) -> int:
    return run_harness(args.arguments)


def run_harness(arguments: list[str]) -> int:
    """``python -m benchmarks ARGUMENTS`` in the source checkout; its exit status."""
    root = harness_root()
    if not {"-h", "--help"} & set(arguments):
        require_extra(BENCH, "modelgate bench")
    command = [sys.executable, "-m", "benchmarks", *arguments]
    return subprocess.run(command, cwd=root, check=False).returncode
