#!/usr/bin/env bash
# GPU check for the speed work (issue 8): GPU-marked parity tests, then `pdfnet bench` on the paper
# model at 1024², every benchmark measured against its eager baseline in the same process.
#
#   OUT=/path/to/out bash scripts/gpu_check.sh       # on a CUDA machine; target < 8 minutes
#   GPU_CHECK_DRY=1 bash scripts/gpu_check.sh        # the same steps on CPU at tiny sizes (CI test)
#
# Environment: OUT (default ./gpu_out), PY (python; default .venv/bin/python if present),
# GPU_CHECK_BUDGET_S (default 450: steps that would start after this are skipped and reported; the
# compile step gets at most what is left of BUDGET_S + 20 s), GPU_CHECK_COMPILE_TIMEOUT_S (default
# 240: cap on the torch.compile benchmark). Per-step timeouts bound everything else.
# Writes to $OUT: gpu_check.json (every benchmark report + step statuses), summary.txt (tables,
# environment, step statuses), pytest_gpu.txt and pytest_gpu.xml. Exit code: number of failed steps.
set -uo pipefail

cd "$(dirname "$0")/.."
OUT="${OUT:-./gpu_out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if [[ -z "${PY:-}" ]]; then
  if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
DRY="${GPU_CHECK_DRY:-0}"
BUDGET_S="${GPU_CHECK_BUDGET_S:-450}"
COMPILE_TIMEOUT_S="${GPU_CHECK_COMPILE_TIMEOUT_S:-240}"
PARTS="$(mktemp -d)"
trap 'rm -rf "$PARTS"' EXIT
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
FAILED=0
STATUS_LINES=()

if [[ "$DRY" == "1" ]]; then
  # Same steps, CPU-sized: tiny Swin, 64² input, random tiny DAv2, one timed iteration.
  DEV=cpu
  MODEL=(--backbone swin_tiny_test --size 64 --set model.emb=16 --device cpu)
  TIMING=(--warmup 0 --iters 1)
  NOFLOPS=(--no-flops)  # the FLOP count is exercised once (model_b1); elsewhere it only costs time
  B_SMALL=1; B_BIG=2; B_TRAIN=1; B_DEPTH=2
  DT=fp32; DT_TRAIN_BASE=fp32  # bf16 autocast is slow on CPUs without AMX; parity tests cover it
  GRAPHS=()
  DEPTH=(--depth-model random:tiny --image-size 64 --input-size 56)
  PRED=(--depth-model random:tiny --image-size 64 --depth-input-size 56)
  FUSED=()
  PYTEST_MARK="gpu"; PYTEST_PATHS=(tests/test_fastpath_parity.py)  # all skipped on CPU: wiring only
else
  DEV=cuda
  MODEL=(--size 1024 --device cuda)
  TIMING=(--warmup 3 --iters 10)
  NOFLOPS=()
  B_SMALL=1; B_BIG=8; B_TRAIN=2; B_DEPTH=8
  DT=bf16; DT_TRAIN_BASE=fp16
  GRAPHS=(--cudagraphs)
  DEPTH=(--depth-model random:large --image-size 518 --input-size 518)
  PRED=(--depth-model random:large --image-size 1024 --depth-input-size 518)
  FUSED=(--fused-adamw)
  PYTEST_MARK="gpu"; PYTEST_PATHS=(tests)
fi
FAST=(--channels-last --fast-upconv)

log() { echo "[gpu_check $(date -u +%H:%M:%S) +${SECONDS}s] $*" | tee -a "$SUMMARY" >&2; }

# step NAME TIMEOUT_S CMD... : run one step unless the budget is spent; record rc and seconds.
step() {
  local name="$1" limit="$2"; shift 2
  if (( SECONDS >= BUDGET_S )); then
    log "SKIP $name (budget of ${BUDGET_S}s spent)"
    STATUS_LINES+=("{\"step\": \"$name\", \"rc\": null, \"seconds\": 0, \"skipped\": true}")
    return 0
  fi
  local t0=$SECONDS rc
  log "RUN  $name: $*"
  timeout --kill-after=10 "$limit" "$@" >>"$SUMMARY" 2>"$PARTS/$name.err"
  rc=$?
  if (( rc != 0 )); then
    FAILED=$((FAILED + 1))
    log "FAIL $name (rc=$rc$([[ $rc == 124 ]] && echo ', timed out')); stderr tail:"
    tail -n 15 "$PARTS/$name.err" | tee -a "$SUMMARY" >&2
  else
    log "OK   $name ($((SECONDS - t0))s)"
  fi
  STATUS_LINES+=("{\"step\": \"$name\", \"rc\": $rc, \"seconds\": $((SECONDS - t0)), \"skipped\": false}")
}

bench() {  # bench NAME TIMEOUT_S WORKLOAD ARGS...
  local name="$1" limit="$2" what="$3"; shift 3
  step "$name" "$limit" "$PY" -m pdfnet.cli.main bench "$what" "$@" --quiet --json "$PARTS/$name.json"
}

log "mode: $([[ $DRY == 1 ]] && echo 'DRY RUN on CPU (tiny sizes)' || echo GPU); OUT=$OUT"
{
  echo "== environment"
  "$PY" - <<'EOF'
import platform, torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "python", platform.python_version())
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print("gpu", p.name, f"{p.total_memory / 2**30:.1f} GiB", "sm", f"{p.major}.{p.minor}")
else:
    print("gpu none")
EOF
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm \
    --format=csv,noheader
} >>"$SUMMARY" 2>&1

# 1. GPU-marked tests: fast-path parity on CUDA (fp32/bf16/fp16 vs the official fixture, CUDA graphs,
#    inductor compile, no host sync in a bf16 fused-AdamW training step), depth fp16 check, etc.
step pytest_gpu 240 bash -c '"$0" -m pytest -q -s -m "$1" -rA -p no:cacheprovider --junitxml="$2" "${@:4}" >"$3" 2>&1' \
  "$PY" "$PYTEST_MARK" "$OUT/pytest_gpu.xml" "$OUT/pytest_gpu.txt" "${PYTEST_PATHS[@]}"
tail -n 25 "$OUT/pytest_gpu.txt" >>"$SUMMARY" 2>/dev/null || true

# 2. Inference, batch 1: release fp32 eager vs bf16 + channels_last + fast stem + CUDA graphs.
bench model_b1 150 model "${MODEL[@]}" "${TIMING[@]}" --batch-size "$B_SMALL" --dtype "$DT" "${FAST[@]}" \
  "${GRAPHS[@]}" --baseline fp32
# 3. Inference, batched: fp32 eager at the same batch vs the eager fast paths.
bench model_batched 150 model "${MODEL[@]}" "${TIMING[@]}" "${NOFLOPS[@]}" --batch-size "$B_BIG" --dtype "$DT" "${FAST[@]}" \
  "${GRAPHS[@]}" --baseline fp32
# 4. Training step: release fp16 AMP eager vs bf16 + channels_last + fast stem + fused AdamW.
bench train 180 train "${MODEL[@]}" "${TIMING[@]}" "${NOFLOPS[@]}" --batch-size "$B_TRAIN" --dtype "$DT" "${FAST[@]}" \
  "${FUSED[@]}" --baseline "$DT_TRAIN_BASE"
# 5. Depth Anything V2-L (random weights, same architecture) at 518², fp16 vs fp32.
bench depth 90 depth "${TIMING[@]}" "${NOFLOPS[@]}" "${DEPTH[@]}" --batch-size "$B_DEPTH" \
  --dtype "$([[ $DRY == 1 ]] && echo fp32 || echo fp16)" --baseline fp32 --device "$DEV"
# 6. End to end (DAv2-L + PDFNet + mask post-processing), batch 4, vs all-fp32 eager.
bench predict 180 predict "${MODEL[@]}" "${TIMING[@]}" "${NOFLOPS[@]}" "${PRED[@]}" --batch-size "$([[ $DRY == 1 ]] && echo 2 || echo 4)" \
  --dtype "$DT" "${FAST[@]}" "${GRAPHS[@]}" --baseline fp32
# 7. torch.compile (inductor, default mode) of the batched inference: slow to compile, so last and capped.
if [[ "$DRY" == "1" ]]; then
  log "SKIP model_compile in dry-run mode (inductor codegen takes minutes on CPU; tests cover tracing)"
  STATUS_LINES+=("{\"step\": \"model_compile\", \"rc\": null, \"seconds\": 0, \"skipped\": true}")
else
  # keep the whole script under ~8 minutes: the compile step gets what is left of it
  left=$(( BUDGET_S + 20 - SECONDS ))
  (( left > COMPILE_TIMEOUT_S )) && left=$COMPILE_TIMEOUT_S
  if (( left < 60 )); then
    log "SKIP model_compile (only ${left}s left)"
    STATUS_LINES+=("{\"step\": \"model_compile\", \"rc\": null, \"seconds\": 0, \"skipped\": true}")
  else
    bench model_compile "$left" model "${MODEL[@]}" --warmup 2 --iters 10 --batch-size "$B_BIG" \
      --dtype "$DT" "${FAST[@]}" --compile --baseline none
  fi
fi

# Merge everything into one JSON (the device tool returns at most 8 files).
printf '%s\n' "${STATUS_LINES[@]}" >"$PARTS/status.jsonl"
"$PY" - "$PARTS" "$OUT/gpu_check.json" "$DRY" <<'EOF'
import json, sys
from pathlib import Path
parts, out, dry = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"
steps = [json.loads(line) for line in (parts / "status.jsonl").read_text().splitlines() if line.strip()]
reports = {p.stem: json.loads(p.read_text()) for p in sorted(parts.glob("*.json"))}
doc = {"dry_run": dry, "steps": steps, "reports": reports}
tmp = out.with_suffix(".tmp")
tmp.write_text(json.dumps(doc, indent=2) + "\n")
tmp.replace(out)
print(f"wrote {out}: {len(reports)} reports, {sum(1 for s in steps if s['rc'] not in (0, None))} failed steps")
EOF
log "done in ${SECONDS}s; failed steps: $FAILED"
exit "$FAILED"
