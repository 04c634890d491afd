"""The benchmark's Markdown report and its plots (PNG, beside the JSON)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# the headline throughput of each stage, and its unit
RATE = {
    "extract": ("edges_per_s", "edges/s"),
    "build": ("rows_per_s", "rows/s"),
    "text": ("sentences_per_s", "sentences/s"),
    "sample": ("sampled_edges_per_s", "sampled edges/s"),
    "train": ("labelled_edges_per_s", "labelled edges/s"),
    "inference": ("nodes_per_s", "nodes/s"),
    "topk": ("users_per_s", "users/s"),
    "write": ("rows_per_s", "rows/s"),
}


def write_report(result: dict, out: Path, stamp: str) -> dict:
    files = {
        "throughput_png": plot_throughput(result, out / f"bench-{stamp}-throughput.png"),
        "memory_png": plot_memory(result, out / f"bench-{stamp}-memory.png"),
        "breakdown_png": plot_breakdown(result, out / f"bench-{stamp}-breakdown.png"),
    }
    md = out / f"bench-{stamp}.md"
    md.write_text(markdown(result, {k: Path(v).name for k, v in files.items()}))
    files["report"] = str(md)
    return {k: str(v) for k, v in files.items()}


def _synth(result: dict) -> list[dict]:
    return [g for g in result["graphs"] if g["name"].startswith("synth")]


def plot_throughput(result: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    graphs = _synth(result)
    for stage, (key, unit) in RATE.items():
        pts = [(g["edges"], g["stages"][stage][key]) for g in graphs if stage in g["stages"]]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=f"{stage} ({unit})")
    ax.set(xscale="log", yscale="log", xlabel="graph edges", ylabel="per second")
    ax.set_title("throughput per stage")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_memory(result: dict, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    graphs = _synth(result)
    for stage in RATE:
        pts = [
            (g["edges"], g["stages"][stage]["peak_rss_mb"]) for g in graphs if stage in g["stages"]
        ]
        if pts:
            ax.plot(*zip(*pts, strict=True), marker="o", label=stage)
    ax.set(xscale="log", yscale="log", xlabel="graph edges", ylabel="peak RSS (MiB)")
    ax.set_title("peak resident memory per stage (process)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_breakdown(result: dict, path: Path) -> Path:
    graphs = result["graphs"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    bottom = [0.0] * len(graphs)
    names = [g["name"] for g in graphs]
    for stage in RATE:
        secs = [g["stages"].get(stage, {}).get("seconds", 0.0) for g in graphs]
        if any(secs):
            ax.bar(names, secs, bottom=bottom, label=stage)
            bottom = [b + s for b, s in zip(bottom, secs, strict=True)]
    ax.set(ylabel="seconds", title="time per stage")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        if abs(v) >= 100:
            return f"{v:,.0f}"
        return f"{v:.3g}"
    return str(v)


def markdown(result: dict, files: dict) -> str:
    m, v = result["machine"], result["versions"]
    lines = [
        "# graphrec bench",
        "",
        f"{m['cpus']} CPUs, {m['memory_gb']} GiB, {m['machine']}; torch {v['torch']}, "
        f"PyG {v['torch_geometric']}, pyarrow {v['pyarrow']}, compiled sampler "
        f"{v['compiled_sampler']}, faiss {v['faiss']}; {'quick' if result['quick'] else 'full'}"
        f" run, {result['seconds']:.0f} s.",
        "",
        f"![throughput]({files['throughput_png']}) ![memory]({files['memory_png']}) "
        f"![breakdown]({files['breakdown_png']})",
        "",
    ]
    for g in result["graphs"]:
        lines += [
            f"## {g['name']} ({g['edges']:,} edges)",
            "",
            "| stage | seconds | throughput | unit | peak RSS MiB | RSS growth MiB |",
            "|---|---|---|---|---|---|",
        ]
        for stage, (key, unit) in RATE.items():
            r = g["stages"].get(stage)
            if r is None:
                continue
            lines.append(
                f"| {stage} | {_fmt(r['seconds'])} | {_fmt(r.get(key))} | {unit} | "
                f"{_fmt(r['peak_rss_mb'])} | {_fmt(r['rss_growth_mb'])} |"
            )
        b = g["stages"].get("build")
        if b:
            ok = "within" if b["peak_over_tensors"] <= 3 else "ABOVE"
            lines += [
                "",
                f"Build: final tensors {b['tensor_mb']:.0f} MiB, RSS growth during the stage "
                f"{b['rss_growth_mb']:.0f} MiB = {b['peak_over_tensors']:.2f}x ({ok} the 3x "
                "target; the growth includes the Arrow tables' conversion buffers).",
            ]
        t = g["stages"].get("topk")
        if t:
            lines += [
                "",
                f"Top-k: {t['gflops']:.1f} GFLOP/s, {100 * t['share_of_peak']:.0f}% of the "
                f"measured matmul peak ({t['matmul_peak_gflops']:.1f} GFLOP/s).",
            ]
            h = t.get("alternatives", {}).get("bfloat16_scan", {})
            if "share_of_peak" in h:
                lines.append(
                    f"With the first pass in bfloat16 (`recommend.scan`): "
                    f"{100 * h['share_of_peak']:.0f}% of the float32 peak; "
                    f"{100 * h['recall_of_float32_items']:.3f}% of float32's items found, "
                    f"{100 * h['same_ranking_users']:.2f}% of users ranked identically, "
                    f"largest score difference {h['max_score_difference']:.2g}."
                )
            a = t.get("alternatives", {}).get("approximate", {})
            if "recall_at_k_all_users" in a:
                lines.append(
                    f"Approximate top-k (IVF, {a['lists']} cells, {a['probes']} probed, "
                    f"tuned to recall {a['recall_at_k']:.3f} on {a['sample_users']} users): "
                    f"recall@k {a['recall_at_k_all_users']:.3f} against exact over every "
                    f"user, {_fmt(a['users_per_s'])} users/s with the index build "
                    f"({a['index_build_seconds']:.1f} s) included."
                )
        alt_rows = []
        for stage in ("sample", "train", "topk"):
            r = g["stages"].get(stage)
            if not r:
                continue
            key, unit = RATE[stage]
            for name, a in r.get("alternatives", {}).items():
                if "skipped" in a:
                    alt_rows.append(
                        f"| {stage} | {name} | {_fmt(r[key])} | skipped: {a['skipped']} | – |"
                    )
                else:
                    mine = a.get("graphrec", r[key])  # measured on the alternative's task
                    alt_rows.append(
                        f"| {stage} | {name} | {_fmt(mine)} {unit} | "
                        f"{_fmt(a[key])} {unit} | {a['ratio']:.2f}x |"
                    )
        if alt_rows:
            lines += [
                "",
                "| stage | alternative | graphrec | alternative | graphrec / alternative |",
                "|---|---|---|---|---|",
                *alt_rows,
            ]
        lines.append("")
    if result["exponents"]:
        lines += [
            "## Cost growth (time ~ edges^exponent over the synthetic sizes)",
            "",
            f"| stage | exponent | flag (> {result['flag_above']:.2f}) |",
            "|---|---|---|",
        ]
        for stage, e in result["exponents"].items():
            lines.append(f"| {stage} | {e['exponent']:.2f} | {'FLAG' if e['flagged'] else ''} |")
        lines.append("")
    return "\n".join(lines)
