// The CUDA backend's host side on every machine: engine/backends/cuda.ts driven against a host EMULATION of the
// addon (4-byte words in ArrayBuffers behind integer handles). Every call is checked against the argument list the
// op contract declares for the entry (engine/op-contract.ts, the source of native/index.d.ts). The emulation models
// the index math of cuda/*.cu where the addon plans (broadcast strides, reduction plans, max/argmax, the matmul plan
// evaluated as native/cublas.cc calls column-major cuBLAS with swapped operands, softmax mask plans, strided copies
// for permute/slice/concat/expand, pad, gathers/scatters, bilinear taps); the arithmetic is the reference backend's
// (its family scalars, and its kernels on views of the emulated buffers for contiguous fused entries), so it is not a
// fifth implementation of the ops. EVERY conformance case of test/engine/conformance.ts then runs through `apply`
// and through offset views in sentinel-padded storages (runCase).
// Catches: a wrong argument order or index between cuda.ts and the addon, wrong strides / offsets / plans, an
// output element not written or a write outside a view. Does not: run CUDA code (that is `npm run test:gpu`);
// emulated arithmetic is float64 like the reference, so device rounding and atomics are not modelled.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { registerBackend } from '../../engine/registry.ts';
import { CudaBackend } from '../../engine/backends/cuda.ts';
import type { CudaAddon, CudaProbe } from '../../native/index.d.ts';
import { BINARY_SCALAR, UNARY_BACKWARD_SCALAR, UNARY_SCALAR, refKernels } from '../../engine/backends/ref.ts';
import type { Storage, TensorRef } from '../../engine/backend.ts';
import { addonEntries, familyOps, type AddonArg, type FamilyOp } from '../../engine/op-contract.ts';
import { OP_NAMES } from '../../engine/backend.ts';
import { CASES, runCase } from './conformance.ts';

type H = number;
interface Buf { f: Float32Array; i: Int32Array; u: Uint32Array }

/** Element offsets of flat index i (row-major over shape) in each stride set. */
function offsets(i: number, shape: number[], strides: number[][]): number[] {
  const off = strides.map(() => 0);
  for (let d = shape.length - 1; d >= 0; d--) {
    const q = i % shape[d];
    i = Math.floor(i / shape[d]);
    strides.forEach((s, k) => { off[k] += q * s[d]; });
  }
  return off;
}
const numel = (s: number[]) => s.reduce((a, b) => a * b, 1);

function makeEmulatedAddon(): CudaAddon {
  const bufs = new Map<H, Buf>();
  let next = 1;
  let mode = 0;
  const buf = (h: H): Buf => {
    const b = bufs.get(h);
    if (!b) throw new Error(`emulated addon: handle ${h} is freed or unknown`);
    return b;
  };
  const view = (dt: number, h: H) => (dt === 1 ? buf(h).i : buf(h).f);
  const f = (h: H) => buf(h).f;
  /** A reference-backend view of an emulated buffer (dtype code 0 float32, 1 int32). */
  const t = (h: H, offset: number, shape: number[], dt = 0): TensorRef => {
    const data = dt === 1 ? buf(h).i : buf(h).f, dtype = dt === 1 ? 'int32' : 'float32';
    return { storage: { backend: 'ref', numel: data.length, dtype, data, freed: false } as Storage, offset, shape, dtype };
  };
  const store = (dt: number, v: number) => (dt === 1 ? v | 0 : Math.fround(v));
  const A: Record<string, unknown> = {
    probe: () => ({}) as CudaProbe,
    alloc: (bytes: number) => {
      const ab = new ArrayBuffer(bytes);
      bufs.set(next, { f: new Float32Array(ab), i: new Int32Array(ab), u: new Uint32Array(ab) });
      return next++;
    },
    free: (h: H) => { buf(h); bufs.delete(h); },
    upload: (h: H, off: number, d: Float32Array | Int32Array) => buf(h).u.set(new Uint32Array(d.buffer, d.byteOffset, d.length), off),
    download: (h: H, off: number, d: Float32Array | Int32Array) => new Uint32Array(d.buffer, d.byteOffset, d.length).set(buf(h).u.subarray(off, off + d.length)),
    synchronize: () => {},
    setGemmMode: (m: number) => { mode = m; },
    gemmMode: () => mode,
    where: (dt: number, cdt: number, oh: H, oo: number, ch: H, co: number, ah: H, ao: number, bh: H, bo: number, shape: number[], sc: number[], sa: number[], sb: number[]) => {
      const O = view(dt, oh), C = view(cdt, ch), Av = view(dt, ah), B = view(dt, bh);
      for (let i = 0; i < numel(shape); i++) {
        const [c, a, b] = offsets(i, shape, [sc, sa, sb]);
        O[oo + i] = C[co + c] !== 0 ? Av[ao + a] : B[bo + b];
      }
    },
    // sum(dt, out, x, outerShape, outerStrides, innerShape, innerStrides)
    sum: (dt: number, oh: H, oo: number, xh: H, xo: number, os: number[], ost: number[], is: number[], ist: number[]) => {
      const O = view(dt, oh), X = view(dt, xh);
      for (let o = 0; o < numel(os); o++) {
        const [base] = offsets(o, os, [ost]);
        let s = 0;
        for (let r = 0; r < numel(is); r++) s += X[xo + base + offsets(r, is, [ist])[0]];
        O[oo + o] = store(dt, s);
      }
    },
    // max(dt, values (h < 0: none), indices, x, outerShape, outerStrides, axisSize, axisStride)
    max: (dt: number, vh: H, vo: number, ih: H, io: number, xh: H, xo: number, os: number[], ost: number[], Ax: number, S: number) => {
      const X = view(dt, xh), I = buf(ih).i, V = vh < 0 ? null : view(dt, vh);
      for (let o = 0; o < numel(os); o++) {
        const [base] = offsets(o, os, [ost]);
        let bv = X[xo + base], bi = 0;
        for (let r = 1; r < Ax; r++) {
          const v = X[xo + base + r * S];
          if (v > bv || (Number.isNaN(v) && !Number.isNaN(bv))) { bv = v; bi = r; }
        }
        if (V) V[vo + o] = bv;
        I[io + o] = bi;
      }
    },
    // matmul(out, a, b, M, N, K, transA, transB, aOffsets, bOffsets, batch, strideA, strideB), evaluated exactly as
    // native/cublas.cc calls cuBLAS: column-major gemm(opB, opA, m = N, n = M, k = K, B, ldb, A, lda, C, ldc = N)
    matmul: (oh: H, oo: number, ah: H, ao: number, bh: H, bo: number, M: number, N: number, K: number, tA: boolean, tB: boolean, aOffs: number[], bOffs: number[], batch: number, sA: number, sB: number) => {
      const C = f(oh), Av = f(ah), B = f(bh);
      const ldb = tB ? K : N, lda = tA ? M : K, ldc = N, m = N, nn = M;
      aOffs.forEach((al, l) => {
        for (let j0 = 0; j0 < batch; j0++) {
          const y0 = ao + al + j0 * sA, x0 = bo + bOffs[l] + j0 * sB, c0 = oo + (l * batch + j0) * M * N;
          for (let i = 0; i < m; i++) for (let j = 0; j < nn; j++) {
            let s = 0;
            for (let k = 0; k < K; k++) s += B[x0 + (tB ? k + i * ldb : i + k * ldb)] * Av[y0 + (tA ? j + k * lda : k + j * lda)];
            C[c0 + i + j * ldc] = s;
          }
        }
      });
    },
    // copy_strided(out, x, shape, outStrides, xStrides)
    copy_strided: (oh: H, oo: number, xh: H, xo: number, shape: number[], os: number[], xs: number[]) => {
      const O = buf(oh).u, X = buf(xh).u;
      for (let i = 0; i < numel(shape); i++) {
        const [a, b] = offsets(i, shape, [os, xs]);
        O[oo + a] = X[xo + b];
      }
    },
    // pad(out, x, outShape, inShape, before, valueBits)
    pad: (oh: H, oo: number, xh: H, xo: number, os: number[], is: number[], before: number[], bits: number) => {
      const O = buf(oh).u, X = buf(xh).u;
      for (let i = 0; i < numel(os); i++) {
        let t = i, src = 0, mul = 1, inside = true;
        for (let d = os.length - 1; d >= 0; d--) {
          const c = (t % os[d]) - before[d];
          t = Math.floor(t / os[d]);
          if (c < 0 || c >= is[d]) inside = false;
          src += c * mul;
          mul *= is[d];
        }
        O[oo + i] = inside ? X[xo + src] : bits >>> 0;
      }
    },
    // (dtype, out, x, idx, O, A, I, K)
    index_select: (dt: number, oh: H, oo: number, xh: H, xo: number, ih: H, io: number, Oo: number, Ax: number, I: number, K: number) => {
      const O = view(dt, oh), X = view(dt, xh), Ix = buf(ih).i;
      for (let i = 0; i < Oo * K * I; i++) {
        const inn = i % I, t = Math.floor(i / I), k = t % K, o = Math.floor(t / K);
        O[oo + i] = X[xo + (o * Ax + Ix[io + k]) * I + inn];
      }
    },
    index_add: (dt: number, oh: H, oo: number, gh: H, go: number, ih: H, io: number, Oo: number, S: number, I: number, K: number) => {
      const O = view(dt, oh), G = view(dt, gh), Ix = buf(ih).i;
      O.fill(0, oo, oo + Oo * S * I);
      for (let i = 0; i < Oo * K * I; i++) {
        const inn = i % I, t = Math.floor(i / I), k = t % K, o = Math.floor(t / K);
        const at = oo + (o * S + Ix[io + k]) * I + inn;
        O[at] = store(dt, O[at] + G[go + i]);
      }
    },
    // (dtype, out, x, idx, idxShape, xStrides (axis 0), axisStride, axisSize, xNumel)
    gather: (dt: number, oh: H, oo: number, xh: H, xo: number, ih: H, io: number, shape: number[], st: number[], as: number) => {
      const O = view(dt, oh), X = view(dt, xh), Ix = buf(ih).i;
      for (let i = 0; i < numel(shape); i++) O[oo + i] = X[xo + offsets(i, shape, [st])[0] + Ix[io + i] * as];
    },
    scatter_add: (dt: number, oh: H, oo: number, gh: H, go: number, ih: H, io: number, shape: number[], st: number[], as: number, _A: number, on: number) => {
      const O = view(dt, oh), G = view(dt, gh), Ix = buf(ih).i;
      O.fill(0, oo, oo + on);
      for (let i = 0; i < numel(shape); i++) {
        const at = oo + offsets(i, shape, [st])[0] + Ix[io + i] * as;
        O[at] = store(dt, O[at] + G[go + i]);
      }
    },
  };
  // the binary, unary and unary backward families: one entry per op of the contract, arithmetic of the reference
  for (const op of familyOps('binary')) {
    const [fF, fI] = BINARY_SCALAR[op as FamilyOp<'binary'>];
    A[op] = (dt: number, oh: H, oo: number, ah: H, ao: number, bh: H, bo: number, shape: number[], sa: number[], sb: number[]) => {
      const O = view(dt, oh), Av = view(dt, ah), B = view(dt, bh), fn = dt === 1 && fI ? fI : fF;
      for (let i = 0; i < numel(shape); i++) {
        const [a, b] = offsets(i, shape, [sa, sb]);
        O[oo + i] = fn(Av[ao + a], B[bo + b]);
      }
    };
  }
  for (const op of familyOps('unary')) {
    const fn = UNARY_SCALAR[op as FamilyOp<'unary'>];
    A[op] = (dt: number, oh: H, oo: number, xh: H, xo: number, n: number) => {
      const O = view(dt, oh), X = view(dt, xh);
      for (let i = 0; i < n; i++) O[oo + i] = fn(X[xo + i]);
    };
  }
  for (const op of familyOps('unary_backward')) {
    const fn = UNARY_BACKWARD_SCALAR[op as FamilyOp<'unary_backward'>];
    A[op] = (oh: H, oo: number, xh: H, xo: number, gh: H, go: number, n: number) => {
      const O = f(oh), X = f(xh), G = f(gh);
      for (let i = 0; i < n; i++) O[oo + i] = fn(X[xo + i], G[go + i]);
    };
  }
  // softmax / log_softmax(out, x, rows, D, mask h (< 0: none), mask off, maskRowShape, maskRowStrides, maskCol, scale)
  for (const log of [false, true]) {
    A[log ? 'log_softmax' : 'softmax'] = (oh: H, oo: number, xh: H, xo: number, rows: number, D: number, mh: H, mo: number, ms: number[], mst: number[], mcol: number, scale: number) => {
      const O = f(oh), X = f(xh), Mk = mh < 0 ? null : f(mh);
      for (let r = 0; r < rows; r++) {
        const mb = Mk ? mo + offsets(r, ms, [mst])[0] : 0;
        const v = Array.from({ length: D }, (_, c) => X[xo + r * D + c] * scale + (Mk ? Mk[mb + c * mcol] : 0));
        const m = Math.max(...v);
        const s = v.reduce((acc, x) => acc + Math.exp(x - m), 0);
        for (let c = 0; c < D; c++) O[oo + r * D + c] = log ? v[c] - m - Math.log(s) : Math.exp(v[c] - m) / s;
      }
    };
  }






  // entries that take contiguous operands: the argument lists are unpacked here (as native/addon.cc does), the
  // arithmetic is the reference backend's own kernel on views of the emulated buffers
  const R = refKernels;
  A.layer_norm = (yh: H, yo: number, mh: H, mo: number, rh: H, ro: number, xh: H, xo: number, wh: H, wo: number, bh: H, bo: number, Rn: number, D: number, eps: number) =>
    R.layer_norm([t(xh, xo, [Rn, D]), t(wh, wo, [D]), t(bh, bo, [D])], [t(yh, yo, [Rn, D]), t(mh, mo, [Rn]), t(rh, ro, [Rn])], { eps });
  A.layer_norm_backward = (dxh: H, dxo: number, dwh: H, dwo: number, dbh: H, dbo: number, gh: H, go: number, xh: H, xo: number, wh: H, wo: number, mh: H, mo: number, rh: H, ro: number, Rn: number, D: number) =>
    R.layer_norm_backward([t(gh, go, [Rn, D]), t(xh, xo, [Rn, D]), t(wh, wo, [D]), t(mh, mo, [Rn]), t(rh, ro, [Rn])], [t(dxh, dxo, [Rn, D]), t(dwh, dwo, [D]), t(dbh, dbo, [D])], {});
  A.bias_gelu = (oh: H, oo: number, xh: H, xo: number, bh: H, bo: number, Rn: number, D: number) =>
    R.bias_gelu([t(xh, xo, [Rn, D]), t(bh, bo, [D])], [t(oh, oo, [Rn, D])], {});
  A.bias_gelu_backward = (oh: H, oo: number, xh: H, xo: number, bh: H, bo: number, gh: H, go: number, Rn: number, D: number) =>
    R.bias_gelu_backward([t(xh, xo, [Rn, D]), t(bh, bo, [D]), t(gh, go, [Rn, D])], [t(oh, oo, [Rn, D])], {});
  A.cross_entropy = (oh: H, oo: number, xh: H, xo: number, lh: H, lo: number, B: number, C: number, ignoreIndex: number) =>
    R.cross_entropy([t(xh, xo, [B, C]), t(lh, lo, [B], 1)], [t(oh, oo, [B])], { ignoreIndex });
  A.cross_entropy_backward = (oh: H, oo: number, xh: H, xo: number, lh: H, lo: number, gh: H, go: number, B: number, C: number, ignoreIndex: number) =>
    R.cross_entropy_backward([t(xh, xo, [B, C]), t(lh, lo, [B], 1), t(gh, go, [B])], [t(oh, oo, [B, C])], { ignoreIndex });
  for (const op of ['softmax_backward', 'log_softmax_backward'] as const) {
    A[op] = (oh: H, oo: number, yh: H, yo: number, gh: H, go: number, rows: number, D: number, scale: number) =>
      R[op]([t(yh, yo, [rows, D]), t(gh, go, [rows, D])], [t(oh, oo, [rows, D])], { scale });
  }
  A.bce_with_logits = (oh: H, oo: number, xh: H, xo: number, th: H, to: number, n: number) =>
    R.bce_with_logits([t(xh, xo, [n]), t(th, to, [n])], [t(oh, oo, [n])], {});
  A.bce_with_logits_backward = (oh: H, oo: number, xh: H, xo: number, th: H, to: number, gh: H, go: number, n: number) =>
    R.bce_with_logits_backward([t(xh, xo, [n]), t(th, to, [n]), t(gh, go, [n])], [t(oh, oo, [n])], {});
  A.sgd_step = (ph: H, po: number, gh: H, go: number, bh: H, bo: number, n: number, lr: number, momentum: number, weightDecay: number) =>
    R.sgd_step([t(ph, po, [n]), t(gh, go, [n]), ...(bh < 0 ? [] : [t(bh, bo, [n])])], [], { lr, momentum, weightDecay });
  A.affine = (dt: number, oh: H, oo: number, xh: H, xo: number, n: number, scale: number, shift: number) =>
    R.affine([t(xh, xo, [n], dt)], [t(oh, oo, [n], dt)], { scale, shift });
  A.pow_scalar = (oh: H, oo: number, xh: H, xo: number, n: number, exponent: number) => R.pow_scalar([t(xh, xo, [n])], [t(oh, oo, [n])], { exponent });
  A.fill = (dt: number, oh: H, oo: number, n: number, value: number) => R.fill([], [t(oh, oo, [n], dt)], { value });
  A.dropout = (yh: H, yo: number, mh: H, mo: number, xh: H, xo: number, n: number, p: number, seed: number, offset: number) =>
    R.dropout([t(xh, xo, [n])], [t(yh, yo, [n]), t(mh, mo, [n])], { p, seed, offset });
  A.random_uniform = (dt: number, oh: H, oo: number, n: number, seed: number, offset: number, low: number, high: number) =>
    R.random_uniform([], [t(oh, oo, [n], dt)], { seed, offset, low, high });
  A.random_normal = (dt: number, oh: H, oo: number, n: number, seed: number, offset: number, mean: number, std: number) =>
    R.random_normal([], [t(oh, oo, [n], dt)], { seed, offset, mean, std });
  A.adamw_step = (ph: H, po: number, gh: H, go: number, mh: H, mo: number, vh: H, vo: number, n: number, lr: number, b1: number, b2: number, eps: number, wd: number, stepSize: number) => {
    const P = f(ph), G = f(gh), Mm = f(mh), V = f(vh);
    for (let i = 0; i < n; i++) {
      const g = G[go + i];
      Mm[mo + i] = b1 * Mm[mo + i] + (1 - b1) * g;
      V[vo + i] = b2 * V[vo + i] + (1 - b2) * g * g;
      P[po + i] = P[po + i] - (stepSize * Mm[mo + i]) / (Math.sqrt(V[vo + i]) + eps);
      if (lr * wd !== 0) P[po + i] = P[po + i] - lr * wd * P[po + i];
    }
  };

  // single-pointer maps (dtype, out, x, n) and the other scalar-attribute entries
  const toI32 = (v: number) => (Number.isFinite(v) ? Number(BigInt.asIntN(32, BigInt(Math.trunc(v)))) : 0);



  A.cast = (from: number, to: number, oh: H, oo: number, xh: H, xo: number, n: number) => {
    const O = view(to, oh), X = view(from, xh);
    for (let i = 0; i < n; i++) O[oo + i] = to === 1 && from === 0 ? toI32(X[xo + i]) : X[xo + i];
  };



  // resize entries (out, x, P, H, W, OH, OW, alignCorners), index math as in cuda/resize.cu
  const src = (d: number, inn: number, out: number, ac: boolean) => {
    if (ac) return out > 1 ? (d * (inn - 1)) / (out - 1) : 0;
    const v = ((d + 0.5) * inn) / out - 0.5;
    return v < 0 ? 0 : v;
  };
  const lin = (d: number, inn: number, out: number, ac: boolean) => {
    const v = src(d, inn, out, ac), i0 = Math.min(Math.floor(v), inn - 1);
    return { i0, i1: Math.min(i0 + 1, inn - 1), w: v - i0 };
  };
  A.resize_bilinear = (oh: H, oo: number, xh: H, xo: number, P: number, Hh: number, W: number, OH: number, OW: number, ac: boolean) => {
    const O = f(oh), X = f(xh);
    for (let i = 0; i < P * OH * OW; i++) {
      const ox = i % OW, t = Math.floor(i / OW), oy = t % OH, p = Math.floor(t / OH);
      const ly = lin(oy, Hh, OH, ac), lx = lin(ox, W, OW, ac), b = xo + p * Hh * W;
      const top = X[b + ly.i0 * W + lx.i0] * (1 - lx.w) + X[b + ly.i0 * W + lx.i1] * lx.w;
      const bot = X[b + ly.i1 * W + lx.i0] * (1 - lx.w) + X[b + ly.i1 * W + lx.i1] * lx.w;
      O[oo + i] = top * (1 - ly.w) + bot * ly.w;
    }
  };
  A.resize_bilinear_backward = (oh: H, oo: number, gh: H, go: number, P: number, Hh: number, W: number, OH: number, OW: number, ac: boolean) => {
    const O = f(oh), G = f(gh), acc = new Float64Array(P * Hh * W);
    for (let i = 0; i < P * OH * OW; i++) {
      const ox = i % OW, t = Math.floor(i / OW), oy = t % OH, p = Math.floor(t / OH);
      const ly = lin(oy, Hh, OH, ac), lx = lin(ox, W, OW, ac), b = p * Hh * W, v = G[go + i];
      acc[b + ly.i0 * W + lx.i0] += v * (1 - ly.w) * (1 - lx.w);
      acc[b + ly.i0 * W + lx.i1] += v * (1 - ly.w) * lx.w;
      acc[b + ly.i1 * W + lx.i0] += v * ly.w * (1 - lx.w);
      acc[b + ly.i1 * W + lx.i1] += v * ly.w * lx.w;
    }
    for (let k = 0; k < acc.length; k++) O[oo + k] = acc[k];
  };

  return checkedAgainstContract(A) as unknown as CudaAddon;
}

/** Every kernel entry of the op contract is emulated, and each call's arguments match the entry's declared list
 *  (engine/op-contract.ts, the source of native/index.d.ts): count, and kind of each (a tensor is handle + offset). */
function checkedAgainstContract(A: Record<string, unknown>): Record<string, unknown> {
  const ok: Record<AddonArg['kind'], (v: unknown) => boolean> = {
    T: (v) => Number.isInteger(v) && (v as number) >= 0, 'T?': Number.isInteger, dt: (v) => v === 0 || v === 1,
    dims: (v) => Array.isArray(v) && v.every(Number.isInteger), n: (v) => typeof v === 'number', b: (v) => typeof v === 'boolean',
  };
  const out: Record<string, unknown> = { ...A };
  for (const [entry, { args }] of addonEntries()) {
    const fn = A[entry] as ((...a: unknown[]) => unknown) | undefined;
    if (!fn) throw new Error(`emulated addon: no emulation of the contract's entry ${entry}`);
    const flat = args.flatMap((a) => (a.kind === 'T' || a.kind === 'T?' ? [a, { name: `${a.name} offset`, kind: 'n' as const }] : [a]));
    out[entry] = (...v: unknown[]) => {
      if (v.length !== flat.length) throw new Error(`emulated addon: ${entry} called with ${v.length} arguments, the contract declares ${flat.length}`);
      flat.forEach((a, i) => { if (!ok[a.kind](v[i])) throw new Error(`emulated addon: ${entry} argument ${i} (${a.name}, ${a.kind}) is ${JSON.stringify(v[i])}`); });
      return fn(...v);
    };
  }
  return out;
}

// every op of OP_NAMES goes through an emulated entry (the addon's `max` serves both max and argmax)
const EMULATED: ReadonlySet<string> = new Set(OP_NAMES);

registerBackend('cuda-emu', () => new CudaBackend(makeEmulatedAddon(), { available: true } as CudaProbe, { name: 'cuda-emu', gemm: 'fp32' }), -100);

test('cuda.ts plans and addon argument lists reproduce the reference on the plan-heavy conformance cases (host emulation)', () => {
  const failures: string[] = [];
  let n = 0;
  for (const c of CASES) {
    if (!EMULATED.has(c.op)) continue;
    try {
      runCase(c, 'cuda-emu', { offsets: true });
    } catch (e) {
      failures.push(`- ${c.name}: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`);
    }
    n++;
  }
  assert.ok(n === CASES.length && n > 300, `cases run: ${n} of ${CASES.length}`);
  assert.equal(failures, [], `failures:\n${failures.join('\n')}`);
});

test.run();
