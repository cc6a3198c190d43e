// GPU benchmark (`npm run bench:gpu [-- --json] [-- --quick]`): the CUDA backend beside PyTorch on the same GPU in the
// same run (a python3 child with an embedded torch script, run after ours so the two never share the GPU):
//   1. GEMM TFLOP/s, fp32 / tf32 / bf16 ([M, K] @ [K, N] row-major; ours through the matmul kernel into a
//      preallocated output; torch: allow_tf32 off / on, and bf16 both as autocast from fp32 (the same work as ours:
//      convert, multiply, fp32 accumulate) and as pure bf16 tensors);
//   2. forward + backward of one ViLT-B/32-sized pre-norm transformer block (hidden 768, 12 heads, MLP 3072,
//      240 tokens, batch 32, padding mask), ours through the engine's ops and autograd, torch eager with the same
//      explicit attention (no fused SDPA), both fp32; and the peak device memory of each.
// Prints ratios ours / torch; --json prints one JSON object. Does not assert the targets (they are reported).
// Invariants: every timing is a median over timed repetitions after warm-up, bracketed by device synchronisation.
import { spawnSync } from 'node:child_process';
import * as E from '../engine/index.ts';
import { Generator, Tensor, scope } from '../engine/index.ts';
import type { TensorRef } from '../engine/backend.ts';
import { cudaProbe, type CudaBackend, type GemmMode } from '../engine/backends/cuda.ts';

const args = process.argv.slice(2);
const JSON_OUT = args.includes('--json');
const QUICK = args.includes('--quick');

const GEMM_SHAPES: [number, number, number][] = QUICK
  ? [[1024, 1024, 1024], [4096, 4096, 4096]]
  : [[1024, 1024, 1024], [4096, 4096, 4096], [8192, 8192, 8192], [7680, 768, 3072], [7680, 3072, 768]];
const MODES: GemmMode[] = ['fp32', 'tf32', 'bf16'];
const BLOCK = { B: 32, N: 240, D: 768, H: 12, F: 3072 };
const REPS = QUICK ? 5 : 10;

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function timeIt(be: CudaBackend, fn: () => void, reps: number, warm = 3): number {
  for (let i = 0; i < warm; i++) fn();
  be.synchronize();
  const ts: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    fn();
    be.synchronize();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

function ourGemm(be: CudaBackend, M: number, K: number, N: number, mode: GemmMode): number {
  be.setGemmMode(mode);
  const ref = (shape: number[]): TensorRef => ({ storage: be.alloc(shape[0] * shape[1], 'float32'), offset: 0, shape, dtype: 'float32' });
  const a = ref([M, K]), b = ref([K, N]), c = ref([M, N]);
  be.kernels.random_normal!([], [a], { seed: 1, offset: 0, mean: 0, std: 1 });
  be.kernels.random_normal!([], [b], { seed: 2, offset: 0, mean: 0, std: 1 });
  const reps = M * N * K > 1e11 ? Math.max(3, REPS >> 1) : REPS;
  const ms = timeIt(be, () => be.kernels.matmul!([a, b], [c], { transA: false, transB: false }), reps);
  for (const r of [a, b, c]) be.free(r.storage);
  be.setGemmMode('fp32');
  return (2 * M * N * K) / (ms * 1e-3) / 1e12;
}

function blockParams(backend: string): Tensor[] {
  const { D, F } = BLOCK;
  const g = new Generator(7);
  const w = (shape: number[], std: number) => E.keep(E.randn(shape, { generator: g, std, backend }).requiresGrad_());
  const c = (shape: number[], v: number) => E.keep(E.full(shape, v, { backend }).requiresGrad_());
  return [c([D], 1), c([D], 0), w([3 * D, D], 0.02), c([3 * D], 0), w([D, D], 0.02), c([D], 0), c([D], 1), c([D], 0), w([F, D], 0.02), c([F], 0), w([D, F], 0.02), c([D], 0)];
}

function blockForward(p: Tensor[], x: Tensor, mask: Tensor): Tensor {
  const { B, N, D, H } = BLOCK;
  const [ln1w, ln1b, qkvw, qkvb, projw, projb, ln2w, ln2b, fc1w, fc1b, fc2w, fc2b] = p;
  const h = E.layerNorm(x, ln1w, ln1b, 1e-6);
  const qkv = E.linear(h, qkvw, qkvb).reshape([B, N, 3, H, D / H]).permute(2, 0, 3, 1, 4); // [3, B, H, N, Dh]
  const [q, k, v] = [0, 1, 2].map((i) => E.slice(qkv, 0, i, i + 1).squeeze(0));
  const att = E.softmax(E.matmul(q, k, { transB: true }).mul(1 / Math.sqrt(D / H)), -1, mask); // [B, H, N, N]
  const o = E.matmul(att, v).permute(0, 2, 1, 3).reshape([B, N, D]);
  const x1 = x.add(E.linear(o, projw, projb));
  const h2 = E.layerNorm(x1, ln2w, ln2b, 1e-6);
  return x1.add(E.linear(E.gelu(E.linear(h2, fc1w, fc1b)), fc2w, fc2b));
}

function ourBlock(be: CudaBackend): { ms: number; peakBytes: number; reservedBytes: number } {
  const { B, N, D } = BLOCK;
  be.setGemmMode('fp32');
  const p = blockParams(be.name);
  const x = E.keep(E.randn([B, N, D], { generator: new Generator(3), backend: be.name }).requiresGrad_());
  const keep = Int32Array.from({ length: B * N }, (_, i) => (i % N < N - (i / N | 0) ? 1 : 0));
  const mask = E.keep(E.tensor(keep, [B, 1, 1, N], { backend: be.name }));
  const step = () => scope(() => {
    const y = blockForward(p, x, mask);
    y.sum().backward();
    for (const t of [...p, x]) if (t.grad) { t.grad.dispose(); t.grad = null; }
  });
  step();
  be.synchronize();
  be.resetPeak();
  const ms = timeIt(be, step, REPS, 2);
  const st = be.memoryStats();
  for (const t of [...p, x, mask]) t.dispose();
  return { ms, peakBytes: st.peakAllocated, reservedBytes: st.peakReserved };
}

const TORCH_SCRIPT = String.raw`
import json, sys, time
cfg = json.loads(sys.argv[1])
try:
    import torch
except Exception as e:
    print(json.dumps({"error": "no torch: %s" % e})); sys.exit(0)
if not torch.cuda.is_available():
    print(json.dumps({"error": "torch sees no CUDA device"})); sys.exit(0)
dev = torch.device("cuda")
def timeit(fn, reps, warm=3):
    for _ in range(warm): fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); torch.cuda.synchronize(); ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort(); return ts[len(ts) // 2]
out = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0), "gemm": [], "block": None}
reps = cfg["reps"]
for (M, K, N) in cfg["gemm"]:
    a = torch.randn(M, K, device=dev); b = torch.randn(K, N, device=dev)
    r = reps if M * N * K <= 1e11 else max(3, reps // 2)
    row = {"M": M, "K": K, "N": N}
    torch.backends.cuda.matmul.allow_tf32 = False
    row["fp32"] = 2 * M * N * K / (timeit(lambda: a @ b, r) * 1e-3) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = True
    row["tf32"] = 2 * M * N * K / (timeit(lambda: a @ b, r) * 1e-3) / 1e12
    torch.backends.cuda.matmul.allow_tf32 = False
    def ac():
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return a @ b
    row["bf16"] = 2 * M * N * K / (timeit(ac, r) * 1e-3) / 1e12
    a16, b16 = a.bfloat16(), b.bfloat16()
    row["bf16_pure"] = 2 * M * N * K / (timeit(lambda: a16 @ b16, r) * 1e-3) / 1e12
    out["gemm"].append(row)
    del a, b, a16, b16
torch.backends.cuda.matmul.allow_tf32 = False
B, N, D, H, F = cfg["block"]
torch.manual_seed(0)
ln1, ln2 = torch.nn.LayerNorm(D, eps=1e-6).to(dev), torch.nn.LayerNorm(D, eps=1e-6).to(dev)
qkv, proj = torch.nn.Linear(D, 3 * D).to(dev), torch.nn.Linear(D, D).to(dev)
fc1, fc2 = torch.nn.Linear(D, F).to(dev), torch.nn.Linear(F, D).to(dev)
x = torch.randn(B, N, D, device=dev, requires_grad=True)
keep = torch.tensor([[1 if j < N - i else 0 for j in range(N)] for i in range(B)], device=dev)
mask = torch.where(keep[:, None, None, :] > 0, 0.0, -1e30)
def fwd():
    h = ln1(x)
    q, k, v = qkv(h).reshape(B, N, 3, H, D // H).permute(2, 0, 3, 1, 4)
    att = ((q @ k.transpose(-2, -1)) * (1.0 / (D // H) ** 0.5) + mask).softmax(-1)
    o = (att @ v).transpose(1, 2).reshape(B, N, D)
    x1 = x + proj(o)
    return x1 + fc2(torch.nn.functional.gelu(fc1(ln2(x1))))
def step():
    fwd().sum().backward()
    for p in [x, *ln1.parameters(), *ln2.parameters(), *qkv.parameters(), *proj.parameters(), *fc1.parameters(), *fc2.parameters()]:
        p.grad = None
step(); torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
ms = timeit(step, reps, 2)
out["block"] = {"ms": ms, "peakBytes": torch.cuda.max_memory_allocated(), "reservedBytes": torch.cuda.max_memory_reserved()}
print(json.dumps(out))
`;

interface TorchOut {
  error?: string;
  torch?: string;
  device?: string;
  gemm?: { M: number; K: number; N: number; fp32: number; tf32: number; bf16: number; bf16_pure: number }[];
  block?: { ms: number; peakBytes: number; reservedBytes: number } | null;
}

function runTorch(): TorchOut {
  const cfg = { gemm: GEMM_SHAPES, block: [BLOCK.B, BLOCK.N, BLOCK.D, BLOCK.H, BLOCK.F], reps: REPS };
  const r = spawnSync(process.env.APTUNE_PYTHON ?? 'python3', ['-c', TORCH_SCRIPT, JSON.stringify(cfg)], { encoding: 'utf8', maxBuffer: 1 << 24, timeout: 300_000 });
  if (r.error) return { error: `python3 failed to start: ${r.error.message}` };
  const line = (r.stdout ?? '').trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as TorchOut;
  } catch {
    return { error: `torch script failed (exit ${r.status}): ${(r.stderr ?? '').trim().split('\n').slice(-3).join(' | ')}` };
  }
}

function main(): void {
  const { probe, reason } = cudaProbe();
  if (!probe?.available) {
    const msg = `bench:gpu: cuda unavailable: ${reason}`;
    if (JSON_OUT) console.log(JSON.stringify({ error: msg }));
    else console.log(msg);
    process.exitCode = JSON_OUT ? 0 : 1;
    return;
  }
  const be = backendFor();
  E.setBackend('cuda');
  const gemm = GEMM_SHAPES.map(([M, K, N]) => {
    const row: Record<string, number> = { M, K, N };
    for (const m of MODES) row[m] = ourGemm(be, M, K, N, m);
    return row;
  });
  const block = ourBlock(be);
  be.emptyCache();
  const torch = runTorch();
  const ratio = (a: number, b: number | undefined) => (b ? a / b : null);
  const result = {
    device: probe.device,
    computeCapability: probe.computeCapability,
    cublas: probe.cublas,
    torch: torch.torch ?? null,
    torchError: torch.error ?? null,
    gemm: gemm.map((g, i) => {
      const t = torch.gemm?.[i];
      return {
        shape: [g.M, g.K, g.N],
        ours: { fp32: g.fp32, tf32: g.tf32, bf16: g.bf16 },
        torch: t ? { fp32: t.fp32, tf32: t.tf32, bf16: t.bf16, bf16_pure: t.bf16_pure } : null,
        ratio: t ? { fp32: ratio(g.fp32, t.fp32), tf32: ratio(g.tf32, t.tf32), bf16: ratio(g.bf16, t.bf16), bf16_vs_pure: ratio(g.bf16, t.bf16_pure) } : null,
      };
    }),
    block: {
      config: BLOCK,
      ours: block,
      torch: torch.block ?? null,
      speedup: torch.block ? torch.block.ms / block.ms : null,
      memoryRatio: torch.block ? block.peakBytes / torch.block.peakBytes : null,
    },
    targets: { gemm: 'ours >= 0.9 x torch per mode', block: 'ours no slower than torch eager (speedup >= 1)' },
  };
  if (JSON_OUT) {
    console.log(JSON.stringify(result));
    return;
  }
  console.log(`device ${probe.device} (sm ${probe.computeCapability}), cuBLAS ${probe.cublas}, torch ${torch.torch ?? `unavailable: ${torch.error}`}`);
  console.log('GEMM TFLOP/s            ours fp32 / tf32 / bf16        torch fp32 / tf32 / bf16 (autocast) / bf16 (pure)   ratio');
  for (const g of result.gemm) {
    const o = g.ours, t = g.torch;
    const f = (x: number | null | undefined) => (x == null ? '   -  ' : x.toFixed(1).padStart(6));
    console.log(`${g.shape.join('x').padEnd(20)} ${f(o.fp32)} ${f(o.tf32)} ${f(o.bf16)}        ${f(t?.fp32)} ${f(t?.tf32)} ${f(t?.bf16)} ${f(t?.bf16_pure)}     ` +
      (g.ratio ? `${g.ratio.fp32!.toFixed(2)} / ${g.ratio.tf32!.toFixed(2)} / ${g.ratio.bf16!.toFixed(2)}` : '-'));
  }
  const b = result.block;
  console.log(`transformer block fwd+bwd (B ${BLOCK.B}, N ${BLOCK.N}, D ${BLOCK.D}, fp32): ours ${b.ours.ms.toFixed(2)} ms, peak ${(b.ours.peakBytes / 2 ** 30).toFixed(2)} GiB` +
    (b.torch ? `; torch ${b.torch.ms.toFixed(2)} ms, peak ${(b.torch.peakBytes / 2 ** 30).toFixed(2)} GiB; speedup ${b.speedup!.toFixed(2)}x, memory ratio ${b.memoryRatio!.toFixed(2)}` : ''));
}

/** The registered cuda backend (the one the engine dispatches to). */
function backendFor(): CudaBackend {
  return E.backendByName('cuda') as CudaBackend;
}

main();
