"""The quality table: Markdown with mean ± std over seeds, and the verdicts the table is for."""

from __future__ import annotations

from pathlib import Path

from graphrec.compare.baselines import RANKING_BASELINES, RATING_BASELINES
from graphrec.compare.stats import paired_bootstrap, paired_margin
from graphrec.outputs import write_text_atomic

COLUMNS = [
    ("recall@10", "Recall@10"),
    ("recall@20", "Recall@20"),
    ("ndcg@10", "NDCG@10"),
    ("ndcg@20", "NDCG@20"),
    ("hit@10", "HitRate@10"),
    ("coverage@20", "Coverage@20"),
    ("rmse", "RMSE"),
    ("mae", "MAE"),
    ("seconds", "fit s"),
    ("train_edges_per_s", "train edges/s"),
]


def _cell(summary: dict, key: str) -> str:
    mean, std = summary.get("mean", {}), summary.get("std", {})
    if key not in mean:
        return "–"
    if key == "seconds":
        return f"{mean[key]:.1f}"
    if key == "train_edges_per_s":
        return f"{mean[key]:,.0f}"
    return f"{mean[key]:.4f} ± {std[key]:.4f}"


def _interval(ci: tuple[float, float] | None) -> str:
    return "" if ci is None else f"; 95% interval over test users [{ci[0]:+.4f}, {ci[1]:+.4f}]"


def verdicts(results: dict, model_names: list[str]) -> list[str]:
    """Plain statements: best GNN vs every ranking baseline on NDCG@20 (paired by seed, with
    a bootstrap interval over test users), rating models vs the bias baseline on RMSE, and
    who is below popularity (and whether by more than the test users explain)."""
    lines = []
    # a method whose NDCG@20 could not be computed (no test positives) has no verdict
    ok = {n: r for n, r in results.items() if "ndcg@20" in r.get("mean", {})}
    gnns = [n for n in model_names if n in ok]
    ranking = [b for b in RANKING_BASELINES if b in ok]
    if gnns and ranking:
        best = max(gnns, key=lambda n: ok[n]["mean"]["ndcg@20"])
        lines.append(f"Best graphrec model on NDCG@20: **{best}** ({_cell(ok[best], 'ndcg@20')}).")
        for b in ranking:
            m = paired_margin(ok, best, b)
            ci = paired_bootstrap(ok, best, b)
            spread = max(ok[best]["std"]["ndcg@20"], ok[b]["std"]["ndcg@20"])
            # "beats": the margin exceeds the seed-to-seed std and the test users' interval
            beats = m["mean"] > spread and (ci is None or ci[0] > 0)
            word = (
                "beats"
                if beats
                else ("is above, within the noise,", "does NOT beat")[m["mean"] <= 0]
            )
            lines.append(
                f"- {best} {word} {b}: NDCG@20 margin {m['mean']:+.4f} (per-seed differences "
                f"{', '.join(f'{d:+.4f}' for d in m['per_seed'])}; larger seed std {spread:.4f}"
                f"{_interval(ci)})."
            )
    if "popularity" in ok:
        lines += _popularity_check(ok, model_names)
    rating_models = [n for n in model_names if n in ok and "rmse" in ok[n]["mean"]]
    if "bias" in ok and rating_models:
        bias = ok["bias"]["mean"]["rmse"]
        for n in rating_models:
            r = ok[n]["mean"]["rmse"]
            word = "below" if r < bias else "NOT below"
            lines.append(f"- {n} test RMSE {r:.4f} is {word} the bias baseline's {bias:.4f}.")
    return lines


def _popularity_check(ok: dict, model_names: list[str]) -> list[str]:
    """Who is below popularity on NDCG@20, and the sanity check: no method *measurably*
    worse than popularity, by the mirror of the rule for "beats" (the margin below minus the
    larger seed std and the whole test-user interval below zero)."""
    pop = ok["popularity"]["mean"]["ndcg@20"]
    below = [n for n, r in ok.items() if r["mean"].get("ndcg@20", pop) < pop and n != "popularity"]
    lines = ["- Below popularity on NDCG@20: " + (", ".join(below) if below else "none") + "."]
    worse = []
    for n in below:
        m = paired_margin(ok, n, "popularity")
        ci = paired_bootstrap(ok, n, "popularity")
        spread = max(ok[n]["std"]["ndcg@20"], ok["popularity"]["std"]["ndcg@20"])
        if m["mean"] < -spread and (ci is None or ci[1] < 0):
            worse.append(n)
            why = "measurably worse: below by more than the seed std"
            why += "" if ci is None else " and the whole interval below zero"
        elif ci is not None and ci[1] >= 0:
            why = "within the noise: the interval includes zero"
        else:
            why = f"within the noise: within the larger seed std {spread:.4f}"
        lines.append(
            f"  - {n}: {m['mean']:+.4f} (per seed "
            f"{', '.join(f'{d:+.4f}' for d in m['per_seed'])}{_interval(ci)}) — {why}."
        )
    # rating regressors are judged by RMSE; ranking by predicted rating is not their job
    rating = [n for n in ok if "rmse" in ok[n]["mean"]]
    failed = [n for n in worse if n not in rating and n in model_names]
    weak = [n for n in worse if n not in rating and n not in model_names]
    lines.append(
        "- Sanity check, no graphrec ranking model measurably worse than popularity (the "
        'mirror of "beats"): '
        + ("passes" if not failed else f"FAILS for {', '.join(failed)}")
        + (f"; baselines measurably worse: {', '.join(weak)}" if weak else "")
        + (f" (rating models, judged by RMSE: {', '.join(rating)})" if rating else "")
        + "."
    )
    return lines


def write_report(out: dict, path: Path, model_names: list[str]) -> None:
    lines = [
        f"# Quality: {out['dataset']}",
        "",
        f"`graphrec compare --config {out['config']}`"
        + (f" {' '.join(out['overrides'])}" if out["overrides"] else "")
        + f" — seeds {out['seeds']}, {out['seconds'] / 60:.1f} min on "
        f"{out['environment']['cpus']} CPUs (torch {out['environment']['torch']}).",
        "",
        "Mean ± sample std over seeds (each seed: its own split and initialisation). Full "
        "ranking over items without a train/validation edge; positives: test edges with "
        f"label ≥ {out['base_config']['evaluate']['positive_threshold']} (all test edges "
        "when there is no label). Validation chose every epoch and hyper-parameter; test was "
        'scored once. Margins are paired by seed; a verdict of "beats" needs the margin to '
        "exceed the larger seed std and its 95% interval over test users (each seed's test "
        "users resampled 2000 times) to stay above zero.",
        "",
    ]
    for kind, results in out["results"].items():
        lines += [f"## {kind} split", ""]
        lines.append("| method | " + " | ".join(c[1] for c in COLUMNS) + " |")
        lines.append("|---|" + "---|" * len(COLUMNS))
        order = [*RANKING_BASELINES, *RATING_BASELINES, *model_names]
        for name in [n for n in order if n in results]:
            r = results[name]
            label = name if name not in model_names else f"**{name}** (graphrec)"
            if "skipped" in r:
                lines.append(f"| {label} | skipped: {r['skipped']} |" + " |" * (len(COLUMNS) - 1))
                continue
            lines.append(f"| {label} | " + " | ".join(_cell(r, c[0]) for c in COLUMNS) + " |")
        lines += ["", *verdicts(results, model_names), ""]
        lines.append(
            "Models: "
            + "; ".join(
                f"{n}: `{' '.join(out['models'][n])}`" for n in model_names if n in out["models"]
            )
        )
        lines.append("")
    write_text_atomic(path, "\n".join(lines) + "\n")
