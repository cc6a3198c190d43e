// A small transformer (token + position embeddings, 2 pre-LN blocks with masked multi-head attention and a GELU MLP,
// dropout, a classification head on token 0) trained for 4 AdamW steps on the CUDA backend and on the WebAssembly
// backend (ref if wasm is unavailable) from identical weights and data: the losses must agree within 1e-4
// relative. Dropout draws from the counter-based generator, so both backends drop the same units. GPU only.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { Generator, Tensor, noGrad, scope, tensor } from '../../engine/index.ts';
import { hostRandom } from '../helpers.ts';
import { cudaUnderTest, peerBackend } from './gpu.ts';

const cuda = cudaUnderTest('GPU training step');
const V = 50, T = 12, D = 32, H = 4, F = 64, L = 2, B = 4, C = 5, STEPS = 4;

function initParams(backend: string): Map<string, Tensor> {
  const rng = hostRandom(2024);
  const p = new Map<string, Tensor>();
  const mk = (name: string, shape: number[], std: number, fill?: number) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const d = Float32Array.from({ length: n }, () => (fill !== undefined ? fill : (rng() * 2 - 1) * std * 1.732));
    p.set(name, E.keep(tensor(d, shape, { backend, requiresGrad: true })));
  };
  mk('tok', [V, D], 0.5);
  mk('pos', [T, D], 0.5);
  for (let l = 0; l < L; l++) {
    mk(`b${l}.ln1.w`, [D], 0, 1); mk(`b${l}.ln1.b`, [D], 0, 0);
    mk(`b${l}.qkv.w`, [3 * D, D], 0.15); mk(`b${l}.qkv.b`, [3 * D], 0.02);
    mk(`b${l}.proj.w`, [D, D], 0.15); mk(`b${l}.proj.b`, [D], 0.02);
    mk(`b${l}.ln2.w`, [D], 0, 1); mk(`b${l}.ln2.b`, [D], 0, 0);
    mk(`b${l}.fc1.w`, [F, D], 0.15); mk(`b${l}.fc1.b`, [F], 0.02);
    mk(`b${l}.fc2.w`, [D, F], 0.1); mk(`b${l}.fc2.b`, [D], 0.02);
  }
  mk('lnf.w', [D], 0, 1); mk('lnf.b', [D], 0, 0);
  mk('head.w', [C, D], 0.2); mk('head.b', [C], 0);
  return p;
}

function forward(p: Map<string, Tensor>, ids: Tensor, mask: Tensor, gen: Generator): Tensor {
  const P = (n: string) => p.get(n)!;
  let x = E.embedding(P('tok'), ids).add(P('pos')); // [B, T, D]
  for (let l = 0; l < L; l++) {
    const h = E.layerNorm(x, P(`b${l}.ln1.w`), P(`b${l}.ln1.b`), 1e-6);
    const qkv = E.linear(h, P(`b${l}.qkv.w`), P(`b${l}.qkv.b`)).reshape([B, T, 3, H, D / H]).permute(2, 0, 3, 1, 4); // [3, B, H, T, Dh]
    const [q, k, v] = [0, 1, 2].map((i) => E.slice(qkv, 0, i, i + 1).squeeze(0));
    const att = E.dropout(E.softmax(E.matmul(q, k, { transB: true }).mul(1 / Math.sqrt(D / H)), -1, mask), 0.1, { training: true, generator: gen });
    const o = E.matmul(att, v).permute(0, 2, 1, 3).reshape([B, T, D]); // [B, T, D]
    x = x.add(E.linear(o, P(`b${l}.proj.w`), P(`b${l}.proj.b`)));
    const h2 = E.layerNorm(x, P(`b${l}.ln2.w`), P(`b${l}.ln2.b`), 1e-6);
    x = x.add(E.dropout(E.linear(E.gelu(E.linear(h2, P(`b${l}.fc1.w`), P(`b${l}.fc1.b`))), P(`b${l}.fc2.w`), P(`b${l}.fc2.b`)), 0.1, { training: true, generator: gen }));
  }
  const cls = E.slice(E.layerNorm(x, P('lnf.w'), P('lnf.b'), 1e-6), 1, 0, 1).squeeze(1); // [B, D]
  return E.linear(cls, P('head.w'), P('head.b')); // [B, C]
}

function train(backend: string): number[] {
  const p = initParams(backend);
  const state = new Map<string, [Tensor, Tensor]>();
  for (const [n, t] of p) state.set(n, [E.keep(E.zeros(t.shape, { backend })), E.keep(E.zeros(t.shape, { backend }))]);
  const rng = hostRandom(77);
  const gen = new Generator(1234);
  const losses: number[] = [];
  // one fixed batch, so that the loss must go down
  const idsData = Int32Array.from({ length: B * T }, () => Math.floor(rng() * V));
  const keep = Int32Array.from({ length: B * T }, (_, i) => (i % T < T - (i / T | 0) ? 1 : 0)); // right padding
  const labels = Int32Array.from({ length: B }, () => Math.floor(rng() * C));
  for (let s = 1; s <= STEPS; s++) {
    const loss = scope(() => {
      const ids = tensor(idsData, [B, T], { backend });
      const mask = tensor(keep, [B, 1, 1, T], { backend });
      const l = E.crossEntropy(forward(p, ids, mask, gen), tensor(labels, [B], { backend }));
      l.backward();
      return l.item();
    });
    losses.push(loss);
    noGrad(() => {
      for (const [n, t] of p) {
        const [m, v] = state.get(n)!;
        const wd = n.includes('ln') || n.endsWith('.b') ? 0 : 0.01;
        E.adamwStep(t, t.grad!, m, v, { lr: 3e-3, beta1: 0.9, beta2: 0.98, eps: 1e-8, weightDecay: wd, step: s });
        t.grad!.dispose();
        t.grad = null;
      }
    });
  }
  for (const t of p.values()) t.dispose();
  for (const [m, v] of state.values()) { m.dispose(); v.dispose(); }
  return losses;
}

if (cuda) {
  test('a small transformer trains to the same losses on cuda and on the peer backend (1e-4 relative)', () => {
    cuda.setGemmMode('fp32');
    const peer = peerBackend().name;
    const want = train(peer);
    const got = train('cuda');
    console.log(`losses ${peer}: ${want.map((x) => x.toFixed(6)).join(' ')}\nlosses cuda: ${got.map((x) => x.toFixed(6)).join(' ')}`);
    assert.ok(want[STEPS - 1] < want[0], 'the loss decreases');
    for (let i = 0; i < STEPS; i++) {
      const rel = Math.abs(got[i] - want[i]) / Math.abs(want[i]);
      assert.ok(rel <= 1e-4, `step ${i + 1}: cuda ${got[i]} vs ${peer} ${want[i]} (relative ${rel.toExponential(2)})`);
    }
  });
}

test.run();
