#!/usr/bin/env bash
# One call on a lent GPU (device tool): CUDA smoke tests, then the CUDA timings, all logged to
# $OUT (or ./gpu-results). The GPU image has torch, torch_geometric, scikit-learn, networkx, tqdm,
# pytest and hypothesis; graphkit runs from the checkout through PYTHONPATH, nothing is installed.
#
# Data (benchmarks/gpu_env.sh): on the device machine, Planetoid/Cora in .gpudata, carried:
#   mkdir -p .gpudata/Planetoid && cp -r ../shared/datasets/Planetoid/Cora .gpudata/Planetoid/
# Processed files go to a temp cache.
#
# Records land in benchmarks/results/*.jsonl there and come back as $OUT/results.tgz; merge the
# new lines into the local files and run `python -m benchmarks.report`. Budget: about 6 minutes
# (each step has its own timeout, 530 s in the worst case).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
. benchmarks/gpu_env.sh
GRAPHKIT_CACHE=${GRAPHKIT_CACHE:-$(mktemp -d)}
export GRAPHKIT_CACHE
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  $PY -c "import torch, torch_geometric; print(torch.__version__, torch_geometric.__version__, torch.cuda.get_device_name(0))"
  echo "GRAPHKIT_DATA=${GRAPHKIT_DATA:-unset} nproc=$(nproc)"
} 2>&1 | tee "$OUT/env.txt"
timeout 150 $PY -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.log"
# Timings: MGNN against PyG's GCN, batched NSEG against PyG's GNNExplainer, each pair on the same
# GPU in the same run, so the ratios compare like with like.
timeout 90 $PY -m benchmarks.mgnn_speed --part epoch --device cuda 2>&1 | tee "$OUT/mgnn_speed.log"
timeout 200 $PY -m benchmarks.cluster_scale --nodes 10000 100000 1000000 --device cuda 2>&1 \
  | tee "$OUT/cluster_scale.log"
timeout 90 $PY -m benchmarks.explain --speed --datasets --seeds 0 --epochs 100 --speed-subset 20 \
  --device cuda 2>&1 | tee "$OUT/explain_speed.log"
tar czf "$OUT/results.tgz" benchmarks/results  # one file: the device tool returns at most 8
echo "gpu_check done"
