"""``graphrec bench`` on tiny graphs: every stage measured, alternatives agree, report written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from graphrec.benchmark.runner import exponents, parse_sizes, run_bench
from graphrec.cli import main
from graphrec.errors import ConfigError
from graphrec.pipeline import RssSampler

STAGES = ("extract", "build", "sample", "train", "inference", "topk", "write")


def test_exponent_of_linear_and_quadratic_costs():
    graphs = [
        {
            "edges": e,
            "stages": {"extract": {"seconds": 1e-6 * e}, "topk": {"seconds": 1e-12 * e**2}},
        }
        for e in (1e4, 1e5, 1e6)
    ]
    out = exponents(graphs)
    assert out["extract"]["exponent"] == pytest.approx(1.0) and not out["extract"]["flagged"]
    assert out["topk"]["exponent"] == pytest.approx(2.0) and out["topk"]["flagged"]
    assert exponents(graphs[:1]) == {}
    # a top-k of a sample of users (a --large graph) is not a point of the fit
    graphs[2]["stages"]["topk"] = {"seconds": 1.0, "sampled_users": "the first 2 of 9 users"}
    assert exponents(graphs)["topk"]["exponent"] == pytest.approx(2.0)


def test_rss_sampler_sees_a_stage_peak():
    with RssSampler(interval_s=0.001) as rss:
        base = rss.reset()
        block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
        block[::512] = 2.0
        import time

        time.sleep(0.05)
        assert rss.peak_mb - base > 50
        del block


def test_bad_sizes_are_refused():
    with pytest.raises(ConfigError, match="--sizes"):
        parse_sizes("1e5,ten")
    with pytest.raises(ConfigError, match="--sizes"):
        parse_sizes("10")
    with pytest.raises(ConfigError, match="need --large"):
        parse_sizes("1e6,1e8")
    assert parse_sizes("1e6,1e8", large=True) == [1_000_000, 100_000_000]


def test_bench_on_tiny_graphs_writes_json_report_and_plots(tmp_path):
    result = run_bench(
        [3000, 12000],
        STAGES,
        quick=True,
        data_dir=tmp_path / "data",
        out_dir=tmp_path / "out",
        log=lambda *_: None,
    )
    graphs = result["graphs"]
    assert [g["name"] for g in graphs] == ["synth-3000", "synth-12000"]
    for g in graphs:
        st = g["stages"]
        assert set(st) == set(STAGES)
        assert st["extract"]["edges_per_s"] > 0 and st["build"]["rows_per_s"] > 0
        assert st["sample"]["batches_per_s"] > 0 and st["train"]["labelled_edges_per_s"] > 0
        assert st["inference"]["nodes_per_s"] > 0 and st["write"]["rows_per_s"] > 0
        assert all(s["peak_rss_mb"] > 0 for s in st.values())
        topk = st["topk"]
        assert 0 < topk["share_of_peak"] and topk["gflops"] > 0
        # the per-user loop and FAISS find exactly the batched top-k
        loop = topk["alternatives"]["per_user_loop"]
        assert loop["same_result"] and loop["ratio"] > 0
        faiss = topk["alternatives"]["faiss"]
        assert "skipped" in faiss or faiss["share_same_top_k"] == 1.0
        block = topk["alternatives"]["score_block"]
        assert block["same_scores"] and block["ratio"] > 0
        approx = topk["alternatives"]["approximate"]  # FAISS is a dependency: measured
        assert approx["recall_at_k"] >= 0.95 and 0 < approx["recall_at_k_all_users"] <= 1
        assert approx["users_per_s"] > 0 and approx["ratio"] > 0
        compiled = st["sample"]["alternatives"]["pyg_compiled"]
        assert "skipped" in compiled or compiled["ratio"] > 0
        alts = st["train"]["alternatives"]
        fb = alts["full_batch"]
        assert fb["labelled_edges_per_s"] > 0 and fb["ratio"] > 0
        ref = alts["pyg_reference (link, bce)"]
        assert ref["labelled_edges_per_s"] > 0 and ref["graphrec"] > 0 and ref["steps"] >= 1
        assert alts["sparse_embeddings=true"]["labelled_edges_per_s"] > 0
        assert st["build"]["tensor_mb"] > 0 and st["build"]["peak_over_tensors"] >= 0
    assert set(result["exponents"]) == {"extract", "build", "inference", "topk", "write"}
    files = result["files"]
    saved = json.loads(Path(files["json"]).read_text())
    assert saved["graphs"][1]["edges"] == graphs[1]["edges"]
    assert saved["machine"]["cpus"] >= 1 and saved["versions"]["torch"]
    for key in ("throughput_png", "memory_png", "breakdown_png"):
        assert Path(files[key]).stat().st_size > 5000
    report = Path(files["report"]).read_text()
    assert "## synth-12000" in report and "per_user_loop" in report and "Cost growth" in report
    assert "pyg_reference" in report


def test_a_large_graph_trains_alone_and_ranks_a_sample_of_users(tmp_path, monkeypatch):
    """What ``--large`` sizes do, on a tiny graph with the thresholds lowered: no PyG
    recipe in the train stage, top-k (and the write) for the first users only, named so,
    and top-k left out of the exponents."""
    from graphrec.benchmark import stages

    monkeypatch.setattr(stages, "LARGE_EDGES", 5000)
    monkeypatch.setattr(stages, "LARGE_TOPK_USERS", 7)
    result = run_bench(
        [3000, 12000],
        ("extract", "train", "topk", "write"),
        quick=True,
        data_dir=tmp_path / "data",
        out_dir=tmp_path / "out",
        log=lambda *_: None,
    )
    small, large = (g["stages"] for g in result["graphs"])
    assert "pyg_reference (link, bce)" in small["train"]["alternatives"]
    assert "skipped" in large["train"]["alternatives"]["pyg_reference (link, bce)"]
    assert "skipped" in large["topk"]["alternatives"]["approximate"]
    assert large["train"]["labelled_edges_per_s"] > 0
    assert "sampled_users" not in small["topk"] and small["topk"]["users"] > 7
    assert large["topk"]["users"] == 7 and "the first 7 of" in large["topk"]["sampled_users"]
    assert large["write"]["rows"] <= 7 * 10
    assert "topk" not in result["exponents"] and "extract" in result["exponents"]
    assert "skipped: above 5,000 edges" in Path(result["files"]["report"]).read_text()


def test_cli_bench_refuses_an_unknown_stage(capsys):
    assert main(["bench", "--sizes", "1e4", "--stages", "extract,bogus"]) == 2
    assert "unknown bogus" in capsys.readouterr().err
