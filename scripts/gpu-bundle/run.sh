#!/usr/bin/env bash
# The GPU check, self-contained (built by `npm run gpu:bundle`; see docs/cuda.md). Needs no
# Node.js, npm, network or install: it unpacks its own Node 20 and the compiled project into
# a temporary folder and runs, each timed and cut at its share of the time:
#   a  CUDA-vs-CPU parity of every backend operation and of Algorithms 1-4 on 16 real test
#      images, with cuDNN/cuBLAS and again with our own kernels only (a-own)
#   b  200 training steps from the same seed on CPU and CUDA: loss trajectories compared
#   c  the benchmark table beside PyTorch + cuDNN on the same card (TF32 off on both sides)
#   d  `tempered reproduce --profile quick` end to end on the GPU, with its wall time
#
#   bash run.sh [a,b,c,d]          the steps to run (default all; "a-own" alone is allowed)
#
# Environment: OUT (a folder: logs and summary.json are written there), TEMPERED_GPU_CHECK_SECONDS
# (the whole run's time, default 280; on a device each step gets a share, without one each step
# may take it all, as a guard against a hang), PYTHON (an interpreter with torch).
#
# Exit status: 0 every step passed on a GPU; 1 a step failed or was cut; 2 the bundle itself
# is broken (cannot unpack or start Node); 3 no usable CUDA device here ("no device"): the
# CPU side of a and b ran in full and of c and d at smoke size, and passed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
steps="${1:-a,b,c,d}"
total="${TEMPERED_GPU_CHECK_SECONDS:-280}"
work="$(mktemp -d "${TMPDIR:-/tmp}/tempered-gpu-check.XXXXXX")"
trap 'rm -rf "$work"' EXIT
logdir="${OUT:-$work/out}"
mkdir -p "$logdir"
start_all=$(date +%s)
say() { printf '%s\n' "$*" | tee -a "$logdir/run.log"; }

say "== tempered GPU check: steps $steps, ${total} s in all"
# --- unpack ---------------------------------------------------------------------------------
if ! xz -dc "$here/node.xz" > "$work/node" || ! chmod +x "$work/node" || ! "$work/node" --version > /dev/null; then
  say "run.sh: cannot unpack or start the bundled Node ($here/node.xz)"
  exit 2
fi
mkdir -p "$work/app"
if ! tar -xJf "$here/app.tar.xz" -C "$work/app"; then
  say "run.sh: cannot unpack $here/app.tar.xz"
  exit 2
fi
node="$work/node"
app="$work/app"
say "node $("$node" --version) (bundled), unpacked in $(( $(date +%s) - start_all )) s"

# --- the Python with torch: its site-packages hold pip's cuDNN and cuBLAS -------------------
python=""
for candidate in ${PYTHON:-} python3 /opt/torch/.venv/bin/python3 /usr/bin/python3; do
  if command -v "$candidate" > /dev/null 2>&1 && "$candidate" -c 'import torch' > /dev/null 2>&1; then
    python="$(command -v "$candidate")"
    break
  fi
done
if [ -n "$python" ]; then
  sites="$("$python" -c 'import site; print(":".join(site.getsitepackages()))')"
  export TEMPERED_PYTHON_SITE_PACKAGES="$sites"
  say "python with torch: $python ($("$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' 2>&1))"
else
  say "python with torch: missing (none of ${PYTHON:-} python3 /opt/torch/.venv/bin/python3 /usr/bin/python3 imports torch); the PyTorch column of (c) is left out"
fi

# --- the machine ----------------------------------------------------------------------------
if command -v nvidia-smi > /dev/null 2>&1; then
  say "$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1)"
else
  say "nvidia-smi: not found"
fi
"$node" "$app/checks/check.js" info > "$work/info.json" 2>> "$logdir/run.log"
"$node" -e 'const i = require(process.argv[1]); for (const l of i.lines) console.log(l)' "$work/info.json" | tee -a "$logdir/run.log"
device="$("$node" -p 'require(process.argv[1]).device ? 1 : 0' "$work/info.json" 2>/dev/null || echo 0)"
if [ "$device" = 1 ]; then
  mode="device"
else
  mode="no-device"
  say "no usable CUDA device: the CPU side of every step runs (c and d at smoke size); exit status 3 if it passes"
fi

# --- steps ----------------------------------------------------------------------------------
share_of() {  # percent of the total time per step
  case "$1" in a) echo 30 ;; a-own) echo 15 ;; b) echo 12 ;; c) echo 20 ;; d) echo 23 ;; *) echo 0 ;; esac
}
results=()
failed=0
run_step() {  # run_step NAME CHECK-ARGUMENTS...: check.js under the step's time share
  local name="$1"; shift
  local limit=$(( total * $(share_of "$name") / 100 ))
  [ "$limit" -ge 10 ] || limit=10
  # Without a device there is no device time to share: the limit only guards against a hang
  # (the CPU side is slower than the GPU's, and CI machines are loaded).
  [ "$mode" = device ] || limit="$total"
  local t0=$(date +%s)
  say ""
  say "== step $name (limit ${limit} s)"
  timeout --kill-after=5 "$limit" "$node" "$app/checks/check.js" "$@" --mode "$mode" --result "$work/result-$name.json" \
    > "$logdir/step-$name.log" 2>&1
  local rc=$?
  local secs=$(( $(date +%s) - t0 ))
  cat "$logdir/step-$name.log" >> "$logdir/run.log"
  tail -n 40 "$logdir/step-$name.log"
  local status="passed"
  if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
    status="cut"; failed=1
    say "*** step $name was cut after ${secs} s (its share is ${limit} s); the later steps still run"
  elif [ "$rc" != 0 ]; then
    status="failed"; failed=1
    say "*** step $name FAILED (exit status $rc) after ${secs} s"
  else
    say "step $name passed in ${secs} s"
  fi
  local detail="null"
  [ -s "$work/result-$name.json" ] && detail="$(cat "$work/result-$name.json")"
  results+=("{\"step\":\"$name\",\"status\":\"$status\",\"seconds\":$secs,\"limit\":$limit,\"log\":\"step-$name.log\",\"result\":$detail}")
}

IFS=',' read -r -a wanted <<< "$steps"
for s in "${wanted[@]}"; do
  case "$s" in
    a)
      run_step a a
      # On a GPU, once more with our own kernels only (TEMPERED_CUDA_KERNELS=own).
      if [ "$mode" = device ]; then TEMPERED_CUDA_KERNELS=own run_step a-own a-own; fi ;;
    a-own) TEMPERED_CUDA_KERNELS=own run_step a-own a-own ;;
    b) run_step b b ;;
    c) run_step c c --python "$python" --work "$work" ;;
    d) run_step d d --work "$work" ;;
    *) say "run.sh: unknown step '$s' (expected a, a-own, b, c, d)"; failed=1 ;;
  esac
done

# --- summary --------------------------------------------------------------------------------
elapsed=$(( $(date +%s) - start_all ))
if [ "$failed" = 1 ]; then status=1; elif [ "$mode" = no-device ]; then status=3; else status=0; fi
joined="$(IFS=,; echo "${results[*]:-}")"
printf '{"mode":"%s","exit":%s,"seconds":%s,"steps":[%s],"info":%s}\n' "$mode" "$status" "$elapsed" "$joined" \
  "$(cat "$work/info.json" 2>/dev/null || echo null)" > "$logdir/summary.json"
say ""
case "$status" in
  0) say "gpu check: every step passed in ${elapsed} s" ;;
  3) say "gpu check: no device; the CPU side passed in ${elapsed} s (exit status 3)" ;;
  *) say "gpu check: FAILED in ${elapsed} s (see the steps above; rerun some with: bash run.sh a,b)" ;;
esac
[ -n "${OUT:-}" ] && say "logs and summary.json in $OUT"
exit "$status"
