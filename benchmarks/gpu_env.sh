# Sourced by the gpu_*.sh scripts: run from the checkout (no install), unbuffered output, and the
# data root: GRAPHKIT_DATA if set, else ../shared/datasets, else ./.gpudata (the device machine
# does not get ../shared; copy the datasets a script needs there and pass carry=[".gpudata"];
# `.gpudata/` is git-ignored).
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
if [ -z "${GRAPHKIT_DATA:-}" ]; then
  for d in "$PWD/../shared/datasets" "$PWD/.gpudata"; do
    if [ -d "$d" ]; then export GRAPHKIT_DATA=$d; break; fi
  done
fi
PY=${PYTHON:-python3}
