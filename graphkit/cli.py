"""The ``graphkit`` command line (also ``python -m graphkit``).

Each sub-command lives in its own module under :mod:`graphkit.commands` and defines
``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> dict``. The CLI finds them by
scanning that package, so adding a command never touches this file. Every command takes ``--json``
(one JSON object on stdout, nothing else there) and ``--seed``. Bad input exits 2 with one line on
stderr, other failures exit 1; a user mistake never prints a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from graphkit.errors import GraphError
from graphkit.runtime import _json_default

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def command_modules() -> list[ModuleType]:
    import graphkit.commands as pkg
    mods = [importlib.import_module(f"{pkg.__name__}.{info.name}")
            for info in pkgutil.iter_modules(pkg.__path__) if not info.name.startswith("_")]
    return sorted((m for m in mods if hasattr(m, "run")), key=lambda m: m.ORDER
                  if hasattr(m, "ORDER") else 100)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse exits 2 on usage errors already
        self.exit(EXIT_BAD_INPUT, f"graphkit: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    from graphkit import __version__
    parser = _Parser(prog="graphkit", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"graphkit {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for mod in command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def print_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None,
                file: Any = None) -> None:
    """Print ``rows`` as an aligned plain-text table (floats with 4 significant decimals)."""
    file = file or sys.stdout
    if not rows:
        return
    columns = list(columns or rows[0].keys())

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4f}"
        return "-" if v is None else str(v)

    cells = [[fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)), file=file)
    print("  ".join("-" * w for w in widths), file=file)
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths)), file=file)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        # In --json mode stdout carries the JSON object alone: anything a library prints goes to
        # stderr instead.
        redirect = contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext()
        with redirect:
            result = args._module.run(args)
    except GraphError as exc:
        print(f"graphkit {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"graphkit {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal failure: one line, exit 1
        print(f"graphkit {args.command}: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    if args.json and result is not None:  # None: a non-leading torchrun rank
        print(json.dumps(result, default=_json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
