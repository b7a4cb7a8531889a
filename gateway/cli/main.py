"""`modelgate` command line: one argparse tree, one module per group of verbs."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from gateway.cli import (
    admin_commands,
    bench_command,
    convert_commands,
    evaluate_command,
    experiment_commands,
    import_command,
    monitor_commands,
    registry_commands,
    rollout_command,
    serve_command,
    store_commands,
)
from gateway.cli.output import CLIError
from registry.errors import RegistryError

COMMAND_MODULES = (
    registry_commands,
    store_commands,
    convert_commands,
    import_command,
    serve_command,
    admin_commands,
    monitor_commands,
    evaluate_command,
    rollout_command,
    experiment_commands,
    bench_command,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelgate",
        description="Model-serving gateway with a lifecycle: registry, routing, drift, rollback.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        if argv[:1] == ["bench"]:
            # every argument belongs to the harness, options included (argparse's
            # REMAINDER does not take a leading --option)
            return bench_command.run_harness(argv[1:])
        args = parser.parse_args(argv)
        result = args.handler(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        return int(result or 0)
    except (CLIError, RegistryError) as exc:
        print(f"modelgate: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # output piped into e.g. `head`: stop quietly, as other Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
