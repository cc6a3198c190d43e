// Gradients through the engine on the CUDA backend against the same graphs on the reference backend (whose rules
// are themselves checked by finite differences in test/engine/grad.test.ts): attention with masks, layer norm,
// GELU/QuickGELU, linear layers, losses, embeddings, movement ops, gathers, resize. GPU only (visible skip, or a
// failure under APTUNE_REQUIRE_CUDA=1, elsewhere).
import { test } from 'uvu';
import * as E from '../../engine/index.ts';
import { Generator, Tensor, noGrad, scope, tensor } from '../../engine/index.ts';
import { allclose, hostRandom } from '../helpers.ts';
import { cudaUnderTest } from './gpu.ts';

const cuda = cudaUnderTest('GPU gradient suite');

type Spec = { shape: number[]; lo?: number; hi?: number; int?: number[]; grad?: boolean };
interface GradCase { name: string; ins: Spec[]; f: (x: Tensor[]) => Tensor }

const CASES: GradCase[] = [
  {
    name: 'masked attention', ins: [{ shape: [2, 3, 5, 4] }, { shape: [2, 3, 5, 4] }, { shape: [2, 3, 5, 4] }, { shape: [2, 1, 1, 5], int: [1, 1, 1, 0, 1, 1, 1, 1, 1, 0], grad: false }],
    f: ([q, k, v, m]) => E.matmul(E.softmax(E.matmul(q, k, { transB: true }).mul(0.5), -1, m), v),
  },
  { name: 'layer norm + gelu', ins: [{ shape: [6, 16], lo: -3, hi: 3 }, { shape: [16] }, { shape: [16] }], f: ([x, w, b]) => E.gelu(E.layerNorm(x, w, b, 1e-5)) },
  { name: 'linear + quick gelu + tanh', ins: [{ shape: [2, 5, 8] }, { shape: [7, 8] }, { shape: [7] }], f: ([x, w, b]) => E.tanh(E.quickGelu(E.linear(x, w, b))) },
  { name: 'cross entropy (ignore index)', ins: [{ shape: [6, 9], lo: -3, hi: 3 }, { shape: [6], int: [1, 8, -100, 0, 4, 4], grad: false }], f: ([x, l]) => E.crossEntropy(x, l, { ignoreIndex: -100 }) },
  { name: 'log softmax over axis 1', ins: [{ shape: [3, 7, 2] }], f: ([x]) => E.logSoftmax(x, 1) },
  {
    name: 'embedding + slice/concat/permute/pad', ins: [{ shape: [10, 4] }, { shape: [3, 5], int: [1, 2, 3, 1, 9, 0, 0, 4, 5, 6, 7, 8, 9, 9, 2], grad: false }],
    f: ([w, ids]) => {
      const e = E.embedding(w, ids);
      const c = E.concat([E.slice(e, 1, 0, 2), E.slice(e, 1, 3, 5)], 1);
      return E.pad(E.permute(c, [2, 0, 1]), [[0, 0], [1, 0], [0, 2]], 0.5);
    },
  },
  { name: 'bce with logits', ins: [{ shape: [4, 6], lo: -4, hi: 4 }, { shape: [4, 6], lo: 0, hi: 1, grad: false }], f: ([x, t]) => E.bceWithLogits(x, t, { reduction: 'mean' }) },
  { name: 'gather + max + mean', ins: [{ shape: [4, 6] }, { shape: [4, 3], int: [0, 5, 2, 1, 1, 3, 4, 0, 2, 5, 5, 5], grad: false }], f: ([x, i]) => E.max(E.gather(x, i, 1), 1).add(E.mean(x, 0).sum()) },
  { name: 'resize bilinear', ins: [{ shape: [1, 2, 4, 5] }], f: ([x]) => E.resizeBilinear(x, 7, 3, false) },
  {
    name: 'elementwise mix', ins: [{ shape: [3, 4], lo: 0.2, hi: 2 }, { shape: [4], lo: 0.5, hi: 1.5 }],
    f: ([a, b]) => E.where(a.gt(1), E.exp(a).div(b), E.sqrt(a).mul(E.log(b.add(1)))).add(E.maximum(a, b)).add(E.pow(a, b)).add(E.sigmoid(a).sum(0)),
  },
  { name: 'expand + sum over axes', ins: [{ shape: [3, 1, 4] }], f: ([x]) => E.expand(x, [2, 3, 5, 4]).mul(E.expand(x, [2, 3, 5, 4])).sum([0, 2]) },
];

function grads(c: GradCase, backend: string): Float32Array[] {
  return scope(() => {
    const rng = hostRandom(c.name.length * 31 + 7);
    const xs = c.ins.map((s) => {
      const n = s.shape.reduce((a, b) => a * b, 1);
      if (s.int) return tensor(Int32Array.from(s.int), s.shape, { backend });
      const lo = s.lo ?? -1, hi = s.hi ?? 1;
      const d = Float32Array.from({ length: n }, () => lo + (hi - lo) * rng());
      return tensor(d, s.shape, { backend, requiresGrad: s.grad !== false });
    });
    const y = c.f(xs);
    const R = noGrad(() => E.randn(y.shape, { generator: new Generator(99), backend }));
    y.mul(R).sum().backward();
    const out = xs.filter((x) => x.requiresGrad).map((x) => Float32Array.from(x.grad!.toArray()));
    for (const x of xs) if (x.grad) { x.grad.dispose(); x.grad = null; }
    return out;
  });
}

if (cuda) {
  cuda.setGemmMode('fp32');
  for (const c of CASES) {
    test(`gradients on cuda match ref: ${c.name}`, () => {
      const want = grads(c, 'ref');
      const got = grads(c, 'cuda');
      for (let k = 0; k < want.length; k++) allclose(got[k], want[k], { rtol: 1e-4, atol: 1e-5, msg: `${c.name} d/dx${k}` });
    });
  }
}

test.run();
