"""The shared first stages (``extract_and_build``) and the stage timer (``StageClock``)."""

from __future__ import annotations

import resource
import signal

import pytest
import torch

from graphrec.errors import Interrupted
from graphrec.pipeline import RssSampler, StageClock, extract_and_build

MB = 2**20


def test_each_stage_gets_seconds_and_peak_memory():
    clock = StageClock()
    with clock.stage("extract") as rec:
        rec["edges"] = 96
    with clock.stage("build"):
        pass
    assert list(clock.stages) == ["extract", "build"]
    ext = clock.stages["extract"]
    assert ext["edges"] == 96  # what the stage added is kept
    assert ext["seconds"] >= 0 and clock.stages["build"]["seconds"] >= 0
    assert clock.seconds == {n: s["seconds"] for n, s in clock.stages.items()}
    # without a sampler: the process's peak so far (ru_maxrss), never the stage's growth
    now = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for rec in clock.stages.values():
        assert 0 < rec["peak_rss_mb"] <= now
        assert "rss_growth_mb" not in rec


def test_a_stages_own_seconds_are_kept():
    clock = StageClock()
    with clock.stage("train") as rec:
        rec["seconds"] = 123.5  # e.g. leaving out set-up
    assert clock.stages["train"]["seconds"] == 123.5
    assert clock.seconds == {"train": 123.5}


def test_the_sampler_records_a_stages_own_memory_growth():
    with RssSampler() as rss:
        clock = StageClock(rss)
        with clock.stage("allocate") as rec:
            block = torch.ones(50 * MB // 4)  # 50 MiB, every page written
            rec["sum"] = float(block[:10].sum())
        del block
        with clock.stage("idle"):
            pass
    grown = clock.stages["allocate"]
    assert grown["rss_growth_mb"] >= 45, grown
    assert grown["peak_rss_mb"] >= grown["rss_growth_mb"]
    idle = clock.stages["idle"]
    assert idle["rss_growth_mb"] < 20, idle  # a new baseline per stage
    assert idle["rss_growth_mb"] >= 0


def test_log_gets_one_line_per_finished_stage():
    lines: list[str] = []
    clock = StageClock(log=lines.append)
    with clock.stage("extract") as rec:
        rec.update(edges=96, rate=1234.5678, small=0.123456, nested={"a": 1})
    with clock.stage("build"):
        pass
    assert len(lines) == 2
    assert lines[0].startswith("  extract: {") and lines[1].startswith("  build: {")
    assert "'edges': 96" in lines[0] and "'seconds'" in lines[0] and "'peak_rss_mb'" in lines[0]
    assert "'rate': 1235" in lines[0] and "'small': 0.123" in lines[0]  # rounded for reading
    assert "nested" not in lines[0]  # sub-records are left out of the line
    assert all("\n" not in line for line in lines)


def test_an_interrupt_is_labelled_with_the_stage_it_stopped():
    lines: list[str] = []
    clock = StageClock(log=lines.append)
    with pytest.raises(Interrupted) as info:
        with clock.stage("train"):
            raise Interrupted(signal.SIGTERM)
    exc = info.value
    assert exc.stage == "train"
    assert exc.signal_name == "SIGTERM" and exc.exit_code == 143
    assert lines == []  # not finished: no line
    assert "seconds" not in clock.stages["train"]


def test_the_innermost_stage_names_the_interrupt():
    clock = StageClock()
    with pytest.raises(Interrupted) as info:
        with clock.stage("job"), clock.stage("recommend"):
            raise Interrupted(signal.SIGINT, "half the batches were written")
    assert info.value.stage == "recommend"  # the first clock it passed
    assert info.value.outcome == "half the batches were written"
    assert info.value.exit_code == 130


def test_other_errors_pass_unchanged():
    clock = StageClock()
    with pytest.raises(ValueError, match="boom"):
        with clock.stage("build"):
            raise ValueError("boom")
    assert "seconds" not in clock.stages["build"]


def all_edges(split) -> list[int]:
    return sorted(torch.cat([split.train, split.val, split.test]).tolist())


def test_extract_and_build_splits_every_target_edge_once(tiny_cfg):
    clock = StageClock()
    graph, split = extract_and_build(tiny_cfg, clock, progress=False)
    n = graph.target_index.shape[1]
    assert n == 12 * 8
    assert graph.num_nodes == {"user": 12, "movie": 20}
    parts = [set(p.tolist()) for p in (split.train, split.val, split.test)]
    assert not parts[0] & parts[1] and not parts[0] & parts[2] and not parts[1] & parts[2]
    assert all_edges(split) == list(range(n))  # disjoint and covering
    assert (len(split.val), len(split.test)) == (round(0.1 * n), round(0.1 * n))
    build = clock.stages["build"]
    assert (build["train_edges"], build["val_edges"], build["test_edges"]) == (76, 10, 10)
    assert clock.stages["extract"]["edges"] == n
    assert clock.stages["extract"]["from_snapshot"] is False
    # a second run reads the snapshot and builds the same graph and split
    again_clock = StageClock()
    g2, s2 = extract_and_build(tiny_cfg, again_clock, progress=False)
    assert again_clock.stages["extract"]["from_snapshot"] is True
    assert torch.equal(g2.target_index, graph.target_index)
    for a, b in zip((split.train, split.val, split.test), (s2.train, s2.val, s2.test), strict=True):
        assert torch.equal(a, b)


def test_extract_and_build_temporal_split_holds_out_each_users_latest(tiny_cfg):
    tiny_cfg.build.split.kind = "temporal"
    graph, split = extract_and_build(tiny_cfg, progress=False)
    assert all_edges(split) == list(range(graph.target_index.shape[1]))
    users, when = graph.target_index[0], graph.time
    for u in range(12):
        train, val, test = (when[p[users[p] == u]] for p in (split.train, split.val, split.test))
        assert len(train) > 0 and len(test) > 0
        assert train.max() < torch.cat([val, test]).min()
        assert val.max() < test.min()


def test_final_mode_trains_on_every_edge(tiny_cfg):
    tiny_cfg.mode = "final"
    clock = StageClock()
    graph, split = extract_and_build(tiny_cfg, clock, progress=False)
    n = graph.target_index.shape[1]
    assert torch.equal(split.train, torch.arange(n))
    assert len(split.val) == 0 and len(split.test) == 0
    assert clock.stages["build"]["train_edges"] == n
