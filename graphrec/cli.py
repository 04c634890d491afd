"""``graphrec``: the one entry point.

    graphrec run                                   # bundled MovieLens, from the repo root
    graphrec run --config configs/movielens-link.yaml train.epochs=5
    graphrec run --config configs/movielens.yaml mode=final

Bad input ends with one line ``graphrec: error: ...`` and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from graphrec.errors import GraphRecError

DEFAULT_CONFIG = Path("configs/movielens.yaml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graphrec", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="extract, build, train, recommend and write back")
    run.add_argument(
        "--config", type=Path, default=None, help=f"YAML job config (default: {DEFAULT_CONFIG})"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bars")
    run.add_argument(
        "overrides",
        nargs="*",
        metavar="key.path=value",
        help="dotted config overrides, e.g. train.epochs=3",
    )
    # Options and key=value overrides may come in any order: overrides after an option
    # arrive as "unknown" arguments.
    args, extra = parser.parse_known_args(argv)
    unknown = [e for e in extra if e.startswith("-") or "=" not in e]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = list(args.overrides) + extra
    try:
        return _run(args)
    except GraphRecError as exc:
        print(f"graphrec: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("graphrec: interrupted; nothing was written", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace) -> int:
    from graphrec.config import load_config
    from graphrec.errors import ConfigError

    path = args.config
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            raise ConfigError(
                f"no --config given and {DEFAULT_CONFIG} is not here: run from the graphrec "
                "checkout (the repo root) or pass --config"
            )
        path = DEFAULT_CONFIG
    cfg = load_config(path, args.overrides)
    from graphrec.job import run_job  # heavy imports only once the config is known good

    result = run_job(cfg, progress=not args.quiet)
    m = result.metrics
    summary = {k: m[k] for k in ("rmse", "recall@20", "ndcg@20", "baseline_popularity") if k in m}
    summary["seconds"] = {k: round(v, 1) for k, v in m["seconds"].items()}
    print(json.dumps(summary, indent=1))
    print(f"run folder: {result.run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
