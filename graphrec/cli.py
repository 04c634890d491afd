"""``graphrec``: the one entry point.

    graphrec run                                   # bundled MovieLens ranker, from the repo root
    graphrec run --config configs/movielens.yaml   # rating regression (RMSE)
    graphrec run mode=final                        # train on every edge, write top-k
    graphrec run --workers 2                       # Ray Train, 2 data-parallel workers
    graphrec train --workers 2 --resume            # continue the newest stopped run
    graphrec tune --config configs/movielens-sage-link.yaml --samples 8
    graphrec bench --sizes 1e5,1e6 --quick         # every stage, report + plots in bench/results
    graphrec clean --dry-run                       # staging folders that killed runs left

Bad input ends with one line ``graphrec: error: ...`` and exit status 2; a fault of the
run (a diverged loss, a full disk) with one such line and status 1; SIGINT and SIGTERM with
one line ``graphrec: interrupted by SIG... during STAGE; what was written`` and status 130
and 143.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sys
import threading
import warnings
from pathlib import Path

from graphrec.errors import DEFERRING, PENDING, GraphRecError, Interrupted

DEFAULT_CONFIG = Path("configs/movielens-link.yaml")
"""What ``graphrec run`` uses without ``--config``: the best ranker of ``graphrec compare``."""
COMPARE_CONFIG = Path("configs/movielens.yaml")
"""What ``graphrec compare`` uses without ``--config``: every model and baseline."""
OUT_OF_MEMORY = ("can't allocate memory", "CUDA out of memory", "out of memory")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="graphrec", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="extract, build, train, recommend and write back")
    train = sub.add_parser("train", help="extract, build, train and evaluate (no write-back)")
    tune = sub.add_parser("tune", help="Ray Tune search over lr, hidden size, fan-out, layers")
    compare = sub.add_parser(
        "compare", help="every model and baseline on the same splits and seeds: quality table"
    )
    for p in (run, train, tune, compare):
        p.add_argument(
            "--config",
            type=Path,
            default=None,
            help=f"YAML job config (default: {DEFAULT_CONFIG})",
        )
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument(
            "overrides",
            nargs="*",
            metavar="key.path=value",
            help="dotted config overrides, e.g. train.epochs=3",
        )
    for p in (run, train):
        p.add_argument(
            "--workers",
            type=int,
            default=None,
            help="Ray Train workers (distributed.workers; 0: this process, no Ray)",
        )
        p.add_argument(
            "--resume",
            action="store_true",
            help="continue from the newest checkpoint of train.run_id (default: the newest "
            "run of this config's name under train.checkpoint_path)",
        )
    tune.add_argument("--samples", type=int, default=None, help="trials (tune.num_samples)")

    bench = sub.add_parser("bench", help="throughput, memory and cost growth of every stage")
    bench.add_argument("--sizes", default="1e5,1e6,1e7", help="synthetic graph sizes (edges)")
    bench.add_argument("--stages", default=None, help="comma-separated subset of the stages")
    bench.add_argument("--quick", action="store_true", help="fewer batches and samples")
    bench.add_argument(
        "--large", action="store_true", help="allow sizes above 2e7 edges (1e8: ~15 GiB, 30 min)"
    )
    bench.add_argument("--data", default=".graphrec/bench", help="where generated graphs go")
    bench.add_argument("--out", default="bench/results", help="JSON, Markdown and plots")
    bench.add_argument(
        "--movielens", default="configs/debug.yaml", help="also this config's graph ('' : no)"
    )

    synth = sub.add_parser("synth", help="write a seeded synthetic power-law graph (Parquet)")
    synth.add_argument("--edges", type=float, required=True, help="about this many edges")
    synth.add_argument("--out", type=Path, required=True, help="output folder")
    synth.add_argument("--users", type=int, default=None)
    synth.add_argument("--items", type=int, default=None)
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--quiet", action="store_true")

    load = sub.add_parser(
        "load", help="bulk-load the config's files into its database (Neo4j, ArangoDB, Gremlin)"
    )
    load.add_argument("--config", type=Path, required=True)
    load.add_argument("--batch-rows", type=int, default=10_000)
    load.add_argument("--parallel", type=int, default=1, help="relationship writers")
    load.add_argument("--replace", action="store_true", help="delete and reload relationships")
    load.add_argument(
        "--import-files",
        type=Path,
        default=None,
        metavar="DIR",
        help="Neo4j: write the files of the offline bulk importer (neo4j-admin database "
        "import full) into this new folder and print its command, instead of loading",
    )
    load.add_argument("--quiet", action="store_true")
    load.add_argument("overrides", nargs="*", metavar="key.path=value")

    insp = sub.add_parser(
        "inspect",
        help="list what a Neo4j or ArangoDB database holds (counts, properties) and, with "
        "--config, the feature encoder kind: auto would choose for each node property",
    )
    insp.add_argument(
        "--config", type=Path, default=None, help="the source (files, Neo4j, ArangoDB) to read"
    )
    insp.add_argument("--uri", default=None, help="or connect here (password: $NEO4J_PASSWORD)")
    insp.add_argument("--json", action="store_true")
    insp.add_argument("overrides", nargs="*", metavar="key.path=value")

    transform = sub.add_parser(
        "transform",
        help="recommendations of a trained run for the graph as it is now, new users and "
        "items embedded by the trained model (no retraining)",
    )
    transform.add_argument(
        "--run", type=Path, required=True, help="the run folder of graphrec run / train"
    )
    transform.add_argument(
        "--only-new", action="store_true", help="recommend for the new users only"
    )
    transform.add_argument("--quiet", action="store_true")
    transform.add_argument(
        "overrides",
        nargs="*",
        metavar="key.path=value",
        help="changes to the run's config, e.g. extract.root=... or write.sink=neo4j",
    )

    srv = sub.add_parser("serve", help="top-k recommendations over HTTP from a run folder's model")
    srv.add_argument("run", type=Path, help="the run folder of graphrec run / train / transform")
    srv.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: all)")
    srv.add_argument("--port", type=int, default=8000)
    srv.add_argument(
        "--max-k", type=int, default=100, help="largest k a request may ask for (precomputed)"
    )
    srv.add_argument(
        "--unknown",
        choices=["404", "popularity"],
        default="404",
        help="a user not in the graph: 404, or the most popular items with a fallback flag",
    )
    srv.add_argument("--quiet", action="store_true")
    srv.add_argument("overrides", nargs="*", metavar="key.path=value")

    clean = sub.add_parser(
        "clean", help="remove the unfinished folders that killed runs left behind"
    )
    clean.add_argument(
        "folders",
        nargs="*",
        type=Path,
        help="where to look (default: runs, runs/checkpoints, "
        "the snapshot cache .graphrec/snapshots)",
    )
    clean.add_argument("--dry-run", action="store_true", help="only list them")
    # Options and key=value overrides may come in any order: overrides after an option
    # arrive as "unknown" arguments.
    args, extra = parser.parse_known_args(argv)
    unknown = [e for e in extra if e.startswith("-") or "=" not in e]
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    args.overrides = list(getattr(args, "overrides", [])) + extra
    # PyG's import calls torch.jit.script, which torch 2.15 marks deprecated: noise to users
    warnings.filterwarnings("ignore", "`torch.jit.script` is deprecated", FutureWarning)
    previous = _handle_signals()
    try:
        commands = {
            "run": _run,
            "train": _run,
            "tune": _tune,
            "compare": _compare,
            "bench": _bench,
            "synth": _synth,
            "load": _load,
            "inspect": _inspect,
            "clean": _clean,
            "transform": _transform,
            "serve": _serve,
        }
        return commands[args.command](args)
    except GraphRecError as exc:
        print(f"graphrec: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # a full disk, a folder that cannot be written
        print(f"graphrec: error: {_os_error(exc)}", file=sys.stderr)
        return 1
    except (MemoryError, RuntimeError) as exc:
        text = str(exc)
        if not isinstance(exc, MemoryError) and not any(s in text for s in OUT_OF_MEMORY):
            raise  # a bug: its traceback is what a report needs
        print(
            "graphrec: error: out of memory (a model, batch or k too large for this machine: "
            f"{_one_line(exc)[:160]}); nothing was written",
            file=sys.stderr,
        )
        return 1
    except (Interrupted, KeyboardInterrupt) as exc:
        if not isinstance(exc, Interrupted):
            exc = Interrupted(signal.SIGINT)
        stage = exc.stage or args.command
        print(
            f"graphrec: interrupted by {exc.signal_name} during {stage}; {exc.outcome}",
            file=sys.stderr,
        )
        return exc.exit_code
    finally:  # main() may be called from other code (tests): give its handlers back
        PENDING.clear()
        _restore_signals(previous)


def _handle_signals() -> dict:
    """SIGINT and SIGTERM (what Kubernetes and Ray send) raise :class:`Interrupted` where
    the main thread is; staging folders are removed on the way up. Later signals are
    ignored, so that the cleanup of the first one finishes."""

    def interrupt(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        PENDING.append(signum)  # if this raise is swallowed, the next step raises it again
        if DEFERRING:
            return  # a section that must not be cut in two raises it when it ends
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        return {}  # only the main thread may set handlers; its caller keeps its own
    previous: dict = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    hook = previous["unraisablehook"] = sys.unraisablehook

    def unraisable(u) -> None:
        # a signal that lands inside a finaliser (e.g. multiprocessing's, as DataLoader
        # workers shut down) raises where Python can only print it: PENDING raises it
        # again at the next step, so its traceback would be a second, misleading message
        if not isinstance(u.exc_value, Interrupted):
            hook(u)

    sys.unraisablehook = unraisable
    return previous


def _restore_signals(previous: dict) -> None:
    """Give back what :func:`_handle_signals` replaced."""
    for key, handler in previous.items():
        if key == "unraisablehook":
            sys.unraisablehook = handler
        else:
            signal.signal(key, handler)


def _one_line(exc: BaseException) -> str:
    from graphrec.redact import redact_text

    return " ".join(redact_text(str(exc)).split())


def _os_error(exc: OSError) -> str:
    what = exc.strerror or str(exc)
    where = exc.filename or ""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left on the device writing {where}: nothing was written"
            if where
            else ("no space left on the device: nothing was written")
        )
    return f"{where}: {what}" if where else _one_line(exc)


def _job_config(args: argparse.Namespace):
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
    overrides = list(args.overrides)
    if getattr(args, "workers", None) is not None:
        overrides.append(f"distributed.workers={args.workers}")
    if getattr(args, "resume", False):
        overrides.append("train.resume=true")
    if getattr(args, "samples", None) is not None:
        overrides.append(f"tune.num_samples={args.samples}")
    return load_config(path, overrides)


def _run(args: argparse.Namespace) -> int:
    cfg = _job_config(args)
    from graphrec.job import run_job  # heavy imports only once the config is known good

    result = run_job(cfg, progress=not args.quiet, train_only=args.command == "train")
    m = result.metrics
    keys = ("rmse", "recall@20", "ndcg@20", "baseline_popularity")
    summary = {k: m[k] for k in keys if k in m}
    train = m["stages"]["train"]
    summary["train"] = {
        k: train[k]
        for k in ("workers", "labelled_edges_per_s", "best_epoch", "run_id", "restored_from_epochs")
        if k in train
    }
    summary["seconds"] = {k: round(v, 1) for k, v in m["seconds"].items()}
    print(json.dumps(summary, indent=1))
    print(f"run folder: {result.run_dir}")
    return 0


def _tune(args: argparse.Namespace) -> int:
    cfg = _job_config(args)
    from graphrec.distributed.tune import run_tune

    out = run_tune(cfg, progress=not args.quiet)
    print(json.dumps({k: out[k] for k in ("metric", "best_config", "best_value")}, indent=1))
    print(f"all trials: {out['results_file']}")
    return 0


def _compare(args: argparse.Namespace) -> int:
    from graphrec.compare import run_compare

    path = str(args.config or COMPARE_CONFIG)
    _, md = run_compare(path, args.overrides, progress=not args.quiet)
    print(md.read_text())
    print(f"wrote {md} and {md.with_suffix('.json')}")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from graphrec.benchmark.runner import parse_sizes, run_bench
    from graphrec.benchmark.stages import STAGES
    from graphrec.errors import ConfigError

    stages = tuple(args.stages.split(",")) if args.stages else STAGES
    unknown = [s for s in stages if s not in STAGES]
    if unknown:
        raise ConfigError(f"--stages: unknown {', '.join(unknown)} (have: {', '.join(STAGES)})")
    result = run_bench(
        parse_sizes(args.sizes, args.large),
        stages,
        args.quick,
        args.data,
        args.out,
        args.movielens or None,
    )
    print(Path(result["files"]["report"]).read_text())
    return 0


def _synth(args: argparse.Namespace) -> int:
    import math

    from graphrec.errors import ConfigError
    from graphrec.synth import synth_graph

    if not math.isfinite(args.edges):
        raise ConfigError(f"synth: --edges {args.edges} is not a number of edges")
    stats = synth_graph(
        args.out, int(args.edges), args.users, args.items, args.seed, progress=not args.quiet
    )
    print(json.dumps(stats, indent=1))
    return 0


def _load(args: argparse.Namespace) -> int:
    import dataclasses

    from graphrec.config import load_config
    from graphrec.errors import ConfigError
    from graphrec.loaders import extract
    from graphrec.loaders.files import FileSource
    from graphrec.loaders.neo4j_load import load_graph

    cfg = load_config(args.config, args.overrides)
    if args.import_files is not None and cfg.extract.source in ("gremlin", "arango"):
        raise ConfigError(
            f"graphrec load --import-files writes Neo4j's bulk-import files; extract.source "
            f"is {cfg.extract.source!r}"
        )
    files = dataclasses.replace(cfg.extract, source="files")
    if cfg.extract.source == "gremlin":
        from graphrec.loaders.gremlin_load import load_graph as load_gremlin

        tables = extract(FileSource(files), progress=not args.quiet)
        stats = load_gremlin(
            tables, cfg.extract, cfg.extract.gremlin, args.batch_rows, args.replace
        )
        print(json.dumps(stats, indent=1))
        return 0
    if cfg.extract.source == "arango":
        from graphrec.loaders.arango_load import load_graph as load_arango

        tables = extract(FileSource(files), progress=not args.quiet)
        stats = load_arango(
            tables, cfg.extract, cfg.extract.arango, cfg.name, args.batch_rows, args.replace
        )
        print(json.dumps(stats, indent=1))
        return 0
    tables = extract(FileSource(files), progress=not args.quiet)
    if args.import_files is not None:
        import shlex

        from graphrec.loaders.neo4j_import import import_command, write_import_files

        out = write_import_files(tables, cfg.extract, args.import_files)
        command = ["neo4j-admin", *import_command(out, cfg.extract.neo4j.database)]
        print(json.dumps({"files": str(out.root), "rows": out.rows}, indent=1))
        print(
            "With the Neo4j server stopped (the database must not exist yet), import with:\n  "
            + shlex.join(command)
        )
        return 0
    stats = load_graph(
        tables,
        cfg.extract,
        cfg.extract.neo4j,
        args.batch_rows,
        args.parallel,
        args.replace,
        progress=not args.quiet,
    )
    print(json.dumps(stats, indent=1))
    return 0


def _inspect(args: argparse.Namespace) -> int:
    import dataclasses

    from graphrec.config import Neo4jConfig, load_config
    from graphrec.inspect_neo4j import format_inspection, inspect_neo4j

    job = load_config(args.config, args.overrides) if args.config else None
    out: dict = {}
    text: list[str] = []
    if job is not None and job.extract.source == "gremlin":
        from graphrec.inspect_gremlin import format_inspection as fmt_gremlin
        from graphrec.inspect_gremlin import inspect_gremlin

        out["gremlin"] = inspect_gremlin(job.extract.gremlin)
        text.append(fmt_gremlin(out["gremlin"]))
    elif job is not None and job.extract.source == "arango":
        from graphrec.inspect_arango import format_inspection as fmt
        from graphrec.inspect_arango import inspect_arango

        out["arango"] = inspect_arango(job.extract.arango)
        text.append(fmt(out["arango"]))
    elif job is None or job.extract.source == "neo4j" or args.uri:
        ncfg = job.extract.neo4j if job is not None else Neo4jConfig()
        if args.uri:
            ncfg = dataclasses.replace(ncfg, uri=args.uri)  # checked like a configured one
        out["neo4j"] = inspect_neo4j(ncfg)
        text.append(format_inspection(out["neo4j"]))
    if job is not None:
        from graphrec.inspect_features import feature_choices, format_choices

        try:  # the database part stands on its own: it is how one finds the right names
            out["features"] = feature_choices(job.extract, job.build.features)
            text.append(format_choices(out["features"]))
        except GraphRecError as exc:
            if not text:  # nothing else to show (the file source): the error is the answer
                raise
            out["features"] = {"not read": str(exc)}
            text.append(f"features (kind: auto would choose): not read: {exc}")
    if args.json:  # one section as it is; several side by side
        print(json.dumps(next(iter(out.values())) if len(out) == 1 else out, indent=1, default=str))
    else:
        print("\n".join(text))
    return 0


def _transform(args: argparse.Namespace) -> int:
    from graphrec.transform import transform_run

    result = transform_run(args.run, args.overrides, args.only_new, progress=not args.quiet)
    m = result.metrics
    summary = {
        "nodes": m["nodes"],
        "recommendations": m["recommendations"],
        "seconds": {k: round(v, 1) for k, v in m["seconds"].items()},
    }
    print(json.dumps(summary, indent=1))
    print(f"run folder: {result.run_dir}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from graphrec.errors import ConfigError
    from graphrec.serve.app import serve
    from graphrec.transform import read_run, run_config

    if not 1 <= args.max_k <= 10_000:
        raise ConfigError(f"--max-k={args.max_k}: must be from 1 to 10000")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port={args.port}: must be from 0 to 65535")
    run_config(read_run(args.run), args.overrides)  # a bad folder or override fails here
    if not args.quiet:
        print(f"serving {args.run} on http://{args.host}:{args.port}", flush=True)
    serve(args.run, args.host, args.port, args.overrides, args.max_k, args.unknown)
    return 0


def _clean(args: argparse.Namespace) -> int:
    """Remove staging folders of killed runs: only folders graphrec made (they hold its
    marker file) and whose process is gone; each one is named."""
    import shutil

    from graphrec.staging import leftover_staging

    folders = args.folders or [Path("runs"), Path("runs/checkpoints"), Path(".graphrec/snapshots")]
    found = [f for folder in folders for f in leftover_staging(folder)]
    for path, info in found:
        if info.get("host") != os.uname().nodename:
            print(f"kept {path}: made on host {info.get('host')!r}, which may still be writing it")
            continue
        if not args.dry_run:
            shutil.rmtree(path)
        print(f"{'would remove' if args.dry_run else 'removed'} {path}")
    if not found:
        print(f"nothing to clean in {', '.join(map(str, folders))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
