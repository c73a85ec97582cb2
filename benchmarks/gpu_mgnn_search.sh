#!/usr/bin/env bash
# Stage H of benchmarks.mgnn_search (graph-task lr / weight decay / width, validation folds only)
# on a lent GPU in one device call: MGNN on MUTAG and ENZYMES and the four PyG baselines on
# ENZYMES, 12 shards in parallel, each on CUDA with one CPU thread (collation stays on the CPU)
# and its own dataset cache. The MUTAG baselines are cheap enough for the local CPU. Every
# finished fold is one record; shards stop at STAGE_H_SECONDS (default 460) and whatever is left
# resumes anywhere with the same command on CPU. Records come back as $OUT/search.tgz; merge the
# new lines of benchmarks/results/mgnn_search.jsonl into the local file.
# Data (benchmarks/gpu_env.sh): TUDataset/MUTAG and TUDataset/ENZYMES in .gpudata, carried.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-gpu-results}
mkdir -p "$OUT"
. benchmarks/gpu_env.sh
export OMP_NUM_THREADS=1
LIMIT=${STAGE_H_SECONDS:-460}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 | tee "$OUT/env.txt"
run_shards() {  # $1 = shard count, rest = selection
  local n=$1; shift
  for i in $(seq 0 $((n - 1))); do
    GRAPHKIT_CACHE=$(mktemp -d) timeout "$LIMIT" $PY -m benchmarks.mgnn_search --stage H \
      --device cuda --shard "$i" --shards "$n" "$@" > "$OUT/shard-$n-$i-${1#--}.log" 2>&1 &
  done
}
run_shards 6 --models mgnn
run_shards 6 --datasets enzymes --models gcn sage gat gin
wait
cat "$OUT"/shard-*.log | grep -c "fold" | sed 's/^/folds finished: /'
mkdir -p "$OUT/logs" && mv "$OUT"/shard-*.log "$OUT/logs/"
tar czf "$OUT/search.tgz" benchmarks/results/mgnn_search.jsonl "$OUT/logs"
rm -rf "$OUT/logs"
echo "gpu_mgnn_search done"
