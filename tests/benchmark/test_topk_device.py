"""The device top-k benchmark and the GPU check script, on a machine without a GPU."""

import json
import subprocess
from pathlib import Path

import torch

from graphrec.benchmark import topk_device

ROOT = Path(__file__).resolve().parents[2]


def test_topk_device_measures_the_cpu_and_says_why_not_cuda(tmp_path):
    out = topk_device.main(
        ["--users", "300", "--items", "2000", "--dim", "8", "--batch-users", "64",
         "--out", str(tmp_path / "t.json")]
    )  # fmt: skip
    cpu = out["results"]["cpu"]
    assert cpu["users_per_s"] > 0 and cpu["gflops"] > 0 and cpu["recall_vs_cpu"] == 1.0
    if torch.cuda.is_available():
        assert out["results"]["cuda"]["recall_vs_cpu"] >= 0.999
    else:
        assert out["results"]["cuda"] == {"skipped": "no CUDA device visible"}
    assert json.loads((tmp_path / "t.json").read_text())["items"] == 2000


def test_the_gpu_check_script_parses_and_names_commands_that_exist():
    script = ROOT / "bench" / "gpu_check.sh"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "graphrec.benchmark.topk_device" in text
    assert "graphrec.benchmark.step_profile" in text
    from graphrec.config import load_config

    # every override it passes is one the config accepts
    load_config("configs/debug.yaml", ["train.device=cuda", "distributed.use_gpu=true"])
