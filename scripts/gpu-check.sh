#!/usr/bin/env bash
# The one prepared GPU check (issue 5): run on a fresh GPU machine from the repository root, with `.node` carried
# (scripts/pack-node.sh makes it). Budget: ~8 minutes, capped at APTUNE_GPU_BUDGET_S (540 s) in all. Steps, each logged under $OUT (default ./gpu-out):
#   1. node: use the one on PATH, else unpack .node/node.xz; node_modules: unpack .node/modules.tar.xz if absent;
#   2. cuBLAS: find libcublas.so.13 through python3's nvidia-cublas package (else ldconfig / CUDA folders) and
#      export APTUNE_CUBLAS_DIR and LD_LIBRARY_PATH;
#   3. build the addon with cmake-js (scripts/build-native.mjs --strict; sm_80 + sm_90, or $APTUNE_CUDA_ARCHS);
#   4. tests, with APTUNE_REQUIRE_CUDA=1 so a missing device fails instead of skipping: test/engine/cuda.test.ts
#      (probe, handles, host-side plans), then `npm run test:gpu` (= scripts/test.mjs --gpu): the one conformance
#      suite test/engine/backends.test.ts on cuda (every case of test/engine/conformance.ts against ref, through
#      apply and through offset views, plus its tiny training run) and test/gpu/*.test.ts (tf32/bf16 GEMM, device
#      error paths, gradients on cuda vs ref, a transformer's training losses on cuda vs wasm within 1e-4 relative);
#   5. `npm run bench:gpu -- --json` (bench/gpu.ts beside PyTorch) -> $OUT/bench-gpu.json.
# Does not: install anything or reach the network; stop at the first failing step (later steps still run and the
# exit status is non-zero if any failed). npm itself is not needed: the npm scripts are invoked directly.
# Output files (<= 8, flat): summary.txt env.txt build.log test-cuda.log test-gpu.log bench-gpu.json bench-gpu.log
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=0
log() { echo "[gpu-check $(date -u +%H:%M:%S)] $*" | tee -a "$SUMMARY"; }
# The whole script must end inside one device command (600 s at most): every step's timeout is cut to what is
# left of APTUNE_GPU_BUDGET_S (default 540 s, counted from the script's start), and a step with < 15 s left is skipped.
BUDGET="${APTUNE_GPU_BUDGET_S:-540}"
step() { # step NAME TIMEOUT_S LOGFILE CMD...
  local name=$1 t=$2 logf=$3; shift 3
  local left=$((BUDGET - SECONDS))
  if [ "$left" -lt 15 ]; then log "$name: SKIPPED (only ${left} s of the ${BUDGET} s budget left)"; FAILED=1; return 1; fi
  [ "$t" -gt "$left" ] && t=$left
  local t0=$SECONDS
  timeout "$t" "$@" > "$logf" 2>&1
  local rc=$?
  log "$name: exit $rc in $((SECONDS - t0)) s ($(basename "$logf"))"
  if [ $rc -ne 0 ]; then FAILED=1; tail -n 25 "$logf" | sed 's/^/    /' | tee -a "$SUMMARY"; fi
  return $rc
}

# 1. node and node_modules
if ! command -v node >/dev/null 2>&1 || [ "$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then
  if [ -f .node/node.xz ]; then
    mkdir -p /tmp/aptune-node && xz -dc .node/node.xz > /tmp/aptune-node/node && chmod +x /tmp/aptune-node/node
    export PATH="/tmp/aptune-node:$PATH"
  else
    log "no node >= 20 on PATH and no .node/node.xz (run scripts/pack-node.sh and carry .node)"; exit 2
  fi
fi
if [ ! -f node_modules/tsx/package.json ] || [ ! -f node_modules/cmake-js/package.json ]; then
  if [ -f .node/modules.tar.xz ]; then tar -xJf .node/modules.tar.xz; else log "node_modules missing and no .node/modules.tar.xz"; exit 2; fi
fi
# the WebAssembly kernels (the training-step peer) are git-ignored build outputs: take them from the pack if absent
if ! ls engine/assembly/build/*.wasm >/dev/null 2>&1 && [ -f .node/modules.tar.xz ]; then
  tar -xJf .node/modules.tar.xz --wildcards 'engine/assembly/build/*.wasm' 2>/dev/null || log "no wasm kernels in .node/modules.tar.xz; the training step compares with ref"
fi
if ! command -v nvcc >/dev/null 2>&1; then
  for d in /usr/local/cuda/bin /usr/local/cuda-13*/bin /opt/cuda/bin; do [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break; done
fi

# 2. cuBLAS
CUBLAS_DIR="$(python3 - <<'PY' 2>/dev/null
import glob, os
cands = []
try:
    import nvidia.cublas as m
    roots = list(getattr(m, '__path__', []))
    if getattr(m, '__file__', None): roots.append(os.path.dirname(m.__file__))
    for r in roots: cands += glob.glob(os.path.join(r, '**', 'libcublas.so.1[23]*'), recursive=True)
except Exception:
    pass
try:
    import nvidia
    for r in nvidia.__path__: cands += glob.glob(os.path.join(r, '**', 'libcublas.so.1[23]*'), recursive=True)
except Exception:
    pass
cands.sort(key=lambda p: ('.so.13' not in p, p))
print(os.path.dirname(cands[0]) if cands else '')
PY
)"
if [ -z "$CUBLAS_DIR" ]; then
  CUBLAS_DIR="$(ldconfig -p 2>/dev/null | awk '/libcublas\.so\.1[23] /{print $NF; exit}' | xargs -r dirname)"
fi
[ -z "$CUBLAS_DIR" ] && [ -e /usr/local/cuda/lib64/libcublas.so.13 ] && CUBLAS_DIR=/usr/local/cuda/lib64
if [ -n "$CUBLAS_DIR" ]; then
  export APTUNE_CUBLAS_DIR="$CUBLAS_DIR" LD_LIBRARY_PATH="$CUBLAS_DIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi
{
  echo "node $(command -v node) $(node --version)"; echo "nvcc $(command -v nvcc) $(nvcc --version 2>/dev/null | tail -1)"
  echo "cmake $(command -v cmake) $(cmake --version 2>/dev/null | head -1)"; echo "cuBLAS dir: ${CUBLAS_DIR:-not found}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1
  python3 -c 'import torch; print("torch", torch.__version__, torch.cuda.is_available())' 2>&1
} > "$OUT/env.txt"
log "env: $(tr '\n' ';' < "$OUT/env.txt")"

# 3. build
export APTUNE_BUILD_JOBS="${APTUNE_BUILD_JOBS:-$(nproc)}"
step "build addon" 300 "$OUT/build.log" node scripts/build-native.mjs --strict
node -e "const a=require('./build/Release/aptune_cuda.node'); console.log(JSON.stringify(a.probe()))" >> "$OUT/build.log" 2>&1
log "probe: $(tail -n 1 "$OUT/build.log")"
if command -v cuobjdump >/dev/null 2>&1; then
  log "device code in the addon: $(cuobjdump --list-elf build/Release/aptune_cuda.node 2>/dev/null | grep -oE 'sm_[0-9]+a?' | sort | uniq -c | tr -s ' \n' ' ')"
fi

# 4. tests
export APTUNE_REQUIRE_CUDA="${APTUNE_REQUIRE_CUDA:-1}"
step "test/engine/cuda.test.ts" 120 "$OUT/test-cuda.log" node --import tsx test/engine/cuda.test.ts
step "npm run test:gpu" 300 "$OUT/test-gpu.log" node scripts/test.mjs --gpu
grep -E '^[0-9]+ passed, [0-9]+ failed' "$OUT/test-gpu.log" | tail -n 1 | sed 's/^/    test:gpu: /' | tee -a "$SUMMARY"

# 5. benchmark
step "npm run bench:gpu -- --json" 300 "$OUT/bench-gpu.log" node --import tsx bench/gpu.ts --json
tail -n 1 "$OUT/bench-gpu.log" > "$OUT/bench-gpu.json"
node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
if (r.error) { console.log("    bench: " + r.error); process.exit(0); }
const f = (x) => x == null ? "-" : x.toFixed(2);
for (const g of r.gemm) console.log(`    gemm ${g.shape.join("x")}: ours ${f(g.ours.fp32)}/${f(g.ours.tf32)}/${f(g.ours.bf16)} TFLOP/s, ratio vs torch ${g.ratio ? [g.ratio.fp32, g.ratio.tf32, g.ratio.bf16].map(f).join("/") : "-"}`);
const b = r.block;
console.log(`    block fwd+bwd: ours ${f(b.ours.ms)} ms, torch ${b.torch ? f(b.torch.ms) : "-"} ms, speedup ${f(b.speedup)}, peak ${f(b.ours.peakBytes / 2**30)} GiB vs ${b.torch ? f(b.torch.peakBytes / 2**30) : "-"} GiB`);
if (r.torchError) console.log("    torch: " + r.torchError);
' "$OUT/bench-gpu.json" 2>&1 | tee -a "$SUMMARY"

log "done: $([ $FAILED -eq 0 ] && echo ALL PASSED || echo SOME STEPS FAILED)"
exit $FAILED
