"""The step profile: both arms timed and profiled on a tiny synth graph (CPU here)."""

import json

from graphrec.benchmark import step_profile


def test_both_arms_are_timed_and_their_operators_listed(tmp_path):
    out = step_profile.main(
        ["--edges", "2e4", "--data", str(tmp_path / "data"), "--steps", "3",
         "--out", str(tmp_path / "out")]
    )  # fmt: skip
    assert set(out["arms"]) == {"graphrec", "pyg_recipe"}
    for r in out["arms"].values():
        assert r["sample_ms_per_batch"] > 0 and r["step_ms"] > 0
        assert any(o["op"].startswith("aten::") for o in r["top_ops"])
        assert all(o["calls_per_step"] > 0 for o in r["top_ops"])
        if out["device"] == "cpu":
            assert r["kernel_launches_per_step"] == 0
    # graphrec's step has an adjacency product or an index_add_; PyG's recipe scatters
    ours = {o["op"] for o in out["arms"]["graphrec"]["top_ops"]}
    assert ours & {"aten::mm", "aten::addmm", "aten::_sparse_csr_mm", "aten::index_add_"}
    (saved,) = (tmp_path / "out").glob("step-profile-*.json")
    assert json.loads(saved.read_text())["edges"] == out["edges"]
