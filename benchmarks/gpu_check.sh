#!/usr/bin/env bash
# One call on a lent GPU (device tool): CUDA smoke tests, then the CUDA timings, all logged to
# $OUT (or ./gpu-results). The GPU image has torch, torch_geometric, scikit-learn, networkx, tqdm,
# pytest and hypothesis; graphkit runs from the checkout through PYTHONPATH, nothing is installed.
# Records land in benchmarks/results/*.jsonl there and come back as $OUT/results.tgz; unpack and run
# `python -m benchmarks.report` here. Budget: about 8 minutes.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch, torch_geometric; print(torch.__version__, torch_geometric.__version__, torch.cuda.get_device_name(0))"
} 2>&1 | tee "$OUT/env.txt"
timeout 120 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.log"
# Timings: CUDA and CPU in the same run on the same machine, so ratios compare like with like.
timeout 150 $PY -m benchmarks.mgnn_speed --part epoch --device cuda 2>&1 | tee "$OUT/mgnn_speed.log"
timeout 150 $PY -m benchmarks.cluster_scale --nodes 10000 100000 1000000 --device cuda 2>&1 \
  | tee "$OUT/cluster_scale.log"
timeout 90 $PY -m benchmarks.explain --datasets ba-shapes --explainers nseg --seeds 0 --nodes 400 \
  --epochs 100 --speed --speed-subset 20 2>&1 | tee "$OUT/explain_speed.log"
tar czf "$OUT/results.tgz" benchmarks/results  # one file: the device tool returns at most 8
echo "gpu_check done"
