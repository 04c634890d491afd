#!/usr/bin/env bash
# GPU check of graphrec, in one go on a machine with an NVIDIA GPU (GPU time is short:
# everything below was run on CPU first, where the GPU parts skip with a reason).
#
#   bash bench/gpu_check.sh [OUT_DIR]      (default: bench/results/gpu-<timestamp>)
#
# 1. installs graphrec (the pinned torch wheel from PyPI is a CUDA build) into .venv, unless
#    GRAPHREC_GPU_SKIP_INSTALL=1: then $PYTHON (default python3) must already import
#    torch, torch_geometric, pyarrow and, for steps 4 and 6, ray[train] (on a machine
#    without network, carry the missing packages in and put them on PYTHONPATH), and
#    graphrec runs from this checkout;
# 2. the debug job on CUDA (train.device=cuda), its metrics;
# 3. top-k on the GPU against the CPU (users/s, GFLOP/s, identical results);
# 4. Ray Train with 1 GPU worker;
# 5. the training, inference and top-k stages of `graphrec bench` at 1e6 edges on the GPU
#    (PyG's recipe beside graphrec on the GPU too) and then with the GPU hidden (CPU);
#    a training step of each profiled on the GPU (graphrec.benchmark.step_profile);
# 6. Ray Train with 2 GPU workers (NCCL) where two GPUs are visible.
# Everything lands as JSON in OUT_DIR; a step that fails (or runs past
# GRAPHREC_GPU_STEP_TIMEOUT seconds, default 900) is recorded and the rest go on.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-bench/results/gpu-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
log() { echo "[gpu_check $(date -u +%H:%M:%S)] $*"; }
step() {  # step NAME COMMAND...: run, keep its log and exit status
  local name=$1; shift
  log "$name"
  local t0=$SECONDS
  timeout "${GRAPHREC_GPU_STEP_TIMEOUT:-900}" "$@" >"$OUT/$name.log" 2>&1
  local rc=$?
  echo "{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0))}" >>"$OUT/steps.jsonl"
  [ $rc -eq 0 ] || { log "$name failed (rc $rc): tail of $OUT/$name.log"; tail -5 "$OUT/$name.log"; }
}

if [ "${GRAPHREC_GPU_SKIP_INSTALL:-0}" != 1 ]; then
  if [ ! -x .venv/bin/python ]; then $PY -m venv .venv; fi
  step install .venv/bin/pip install -q -e '.[test]'
  PY=.venv/bin/python
else  # graphrec from this checkout, for the driver and for Ray's workers alike
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
$PY -c "import json, sys; from graphrec.environment import versions; json.dump(versions(), sys.stdout)" \
  >"$OUT/versions.json" 2>"$OUT/versions.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$OUT/gpus.csv" 2>&1 \
  || echo "no nvidia-smi" >"$OUT/gpus.csv"
GPUS=$($PY -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
log "CUDA devices: $GPUS"

step debug_cuda $PY -m graphrec run --config configs/debug.yaml --quiet train.device=cuda \
  write.run_dir="$OUT/debug-cuda"
step topk_gpu $PY -m graphrec.benchmark.topk_device --out "$OUT/topk-device.json"
step ray_1gpu $PY -m graphrec run --config configs/debug.yaml --quiet --workers 1 \
  distributed.use_gpu=true write.run_dir="$OUT/ray-1gpu"
step bench_gpu $PY -m graphrec bench --sizes 1e6 --stages build,sample,train,inference,topk \
  --movielens '' --data .graphrec/bench --out "$OUT/bench-gpu"
CUDA_VISIBLE_DEVICES="" step bench_cpu $PY -m graphrec bench --sizes 1e6 \
  --stages build,sample,train,inference,topk --movielens '' --data .graphrec/bench \
  --out "$OUT/bench-cpu"
step step_profile $PY -m graphrec.benchmark.step_profile --edges 1e6 --data .graphrec/bench \
  --out "$OUT/step-profile"
if [ "$GPUS" -ge 2 ]; then
  step ray_2gpu $PY -m graphrec run --config configs/debug.yaml --quiet --workers 2 \
    distributed.use_gpu=true write.run_dir="$OUT/ray-2gpu"
else
  echo '{"step": "ray_2gpu", "skipped": "fewer than 2 GPUs visible"}' >>"$OUT/steps.jsonl"
fi
$PY - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = {"steps": [json.loads(l) for l in (out / "steps.jsonl").read_text().splitlines()]}
for name in ("debug-cuda", "ray-1gpu", "ray-2gpu"):
    m = out / name / "metrics.json"
    if m.exists():
        d = json.loads(m.read_text())
        summary[name] = {k: d.get(k) for k in ("ndcg@20", "recall@20", "seconds", "environment")}
for name in ("bench-gpu", "bench-cpu"):
    files = sorted((out / name).glob("bench-*.json"))
    if files:
        g = json.loads(files[-1].read_text())["graphs"][0]["stages"]
        flat = lambda r: {k: v for k, v in r.items() if not isinstance(v, (dict, list))}
        summary[name] = {s: flat(r) for s, r in g.items()}
        for s, r in g.items():  # PyG's recipe, full batch, faiss...: each one's own figures
            for a, alt in r.get("alternatives", {}).items():
                summary[name][s][a] = flat(alt)
v = out / "versions.json"
if v.exists() and v.stat().st_size:
    summary["versions"] = json.loads(v.read_text())
for f in sorted((out / "step-profile").glob("step-profile-*.json"))[-1:]:
    arms = json.loads(f.read_text())["arms"]
    summary["step_profile"] = {a: {k: v for k, v in r.items() if k != "top_ops"} for a, r in arms.items()}
t = out / "topk-device.json"
if t.exists():
    summary["topk_device"] = json.loads(t.read_text())
(out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
print(json.dumps(summary, indent=1, default=str)[:4000])
EOF
log "done: $OUT/summary.json"
