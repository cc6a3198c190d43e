// Elementwise kernels: unary (contiguous ranges), binary/ternary with broadcasting through stride descriptors.
// Does not: allocate, check shapes (the host does), or handle float64.
// Invariants: pointers are byte addresses in the shared linear memory; `desc` points to i32 arrays written by
// the host: shape[rank], then one stride array (in elements, 0 = broadcast) per operand; the output is
// contiguous, so output row o of the coalesced shape starts at o * shape[rank-1]. Ranges [i0, i1) / [o0, o1)
// let the host split work across threads without changing any per-element result.

import { fma4, vexp, verf, verfWithExp, vsigmoid, vtanh } from './vmath';
// op codes of the unary, unary backward and binary families: generated from engine/op-contract.ts (npm run gen)
import {
  ABS, ADD, DIV, EQ, ERF, EXP, GE, GELU, GELU_BACKWARD, GT, LE, LOG, LT, MAXIMUM, MINIMUM, MUL, NE, NEG, POW, QUICK_GELU,
  QUICK_GELU_BACKWARD, RELU, RSQRT, SIGMOID, SIGN, SQRT, SUB, TANH,
} from './op-codes';

/** gelu(x) = x/2 (1 + erf(x/sqrt 2)) */
@inline function geluV(x: v128): v128 {
  return f32x4.mul(f32x4.mul(x, f32x4.splat(0.5)), f32x4.add(f32x4.splat(1.0), verf(f32x4.mul(x, f32x4.splat(0.7071067811865476)))));
}
/** g * gelu'(x) = g (cdf(x) + x pdf(x)); erf and the pdf share one exponential, exp(-u^2) with u = x / sqrt 2 */
@inline function geluGradV(x: v128, g: v128): v128 {
  const u = f32x4.mul(x, f32x4.splat(0.7071067811865476));
  const z = f32x4.mul(u, u);
  const e = vexp(f32x4.neg(f32x4.pmin(z, f32x4.splat(100.0)))); // pmin: NaN stays NaN here too
  const cdf = f32x4.mul(f32x4.splat(0.5), f32x4.add(f32x4.splat(1.0), verfWithExp(u, z, e)));
  const pdf = f32x4.mul(e, f32x4.splat(0.3989422804014327));
  return f32x4.mul(g, fma4(x, pdf, cdf));
}

@inline function unaryV(op: i32, x: v128): v128 {
  switch (op) {
    case NEG: return f32x4.neg(x);
    case EXP: return vexp(x);
    case SQRT: return f32x4.sqrt(x);
    case RSQRT: return f32x4.div(f32x4.splat(1.0), f32x4.sqrt(x));
    case ABS: return f32x4.abs(x);
    case SIGN: {
      const one = f32x4.splat(1.0);
      const sg = f32x4.sub(v128.and(f32x4.gt(x, f32x4.splat(0)), one), v128.and(f32x4.lt(x, f32x4.splat(0)), one));
      return v128.bitselect(x, sg, f32x4.ne(x, x)); // NaN stays NaN
    }
    case TANH: return vtanh(x);
    case SIGMOID: return vsigmoid(x);
    case RELU: return f32x4.max(x, f32x4.splat(0)); // NaN propagates like the reference's x > 0 ? x : 0 would not; inputs are finite in practice
    case ERF: return verf(x);
    case GELU: return geluV(x);
    case QUICK_GELU: return f32x4.mul(x, vsigmoid(f32x4.mul(x, f32x4.splat(1.702))));
    default: unreachable(); return x;
  }
}

@inline function unaryS(op: i32, x: f32): f32 {
  if (op == LOG) return Mathf.log(x);
  return f32x4.extract_lane(unaryV(op, f32x4.splat(x)), 0);
}

@inline function unaryLoop(op: i32, x: usize, out: usize, i0: i32, i1: i32): void {
  let i = i0;
  if (op != LOG) {
    for (; i + 4 <= i1; i += 4) v128.store(out + (<usize>i << 2), unaryV(op, v128.load(x + (<usize>i << 2))));
  }
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), unaryS(op, load<f32>(x + (<usize>i << 2))));
}

export function unary_f32(op: i32, x: usize, out: usize, i0: i32, i1: i32): void {
  switch (op) {
    case NEG: unaryLoop(NEG, x, out, i0, i1); break;
    case EXP: unaryLoop(EXP, x, out, i0, i1); break;
    case LOG: unaryLoop(LOG, x, out, i0, i1); break;
    case SQRT: unaryLoop(SQRT, x, out, i0, i1); break;
    case RSQRT: unaryLoop(RSQRT, x, out, i0, i1); break;
    case ABS: unaryLoop(ABS, x, out, i0, i1); break;
    case SIGN: unaryLoop(SIGN, x, out, i0, i1); break;
    case TANH: unaryLoop(TANH, x, out, i0, i1); break;
    case SIGMOID: unaryLoop(SIGMOID, x, out, i0, i1); break;
    case RELU: unaryLoop(RELU, x, out, i0, i1); break;
    case ERF: unaryLoop(ERF, x, out, i0, i1); break;
    case GELU: unaryLoop(GELU, x, out, i0, i1); break;
    case QUICK_GELU: unaryLoop(QUICK_GELU, x, out, i0, i1); break;
    default: unreachable();
  }
}

export function unary_i32(op: i32, x: usize, out: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const v = load<i32>(x + (<usize>i << 2));
    let r: i32 = 0;
    if (op == NEG) r = -v;
    else if (op == ABS) r = v < 0 ? -v : v;
    else if (op == SIGN) r = v > 0 ? 1 : (v < 0 ? -1 : 0);
    else if (op == RELU) r = v > 0 ? v : 0;
    else unreachable();
    store<i32>(out + (<usize>i << 2), r);
  }
}

// two same-shape inputs: gelu_backward(x, g), quick_gelu_backward(x, g)

@inline function unary2V(op: i32, x: v128, g: v128): v128 {
  if (op == GELU_BACKWARD) {
    return geluGradV(x, g);
  } else {
    const s = vsigmoid(f32x4.mul(x, f32x4.splat(1.702)));
    const ds = f32x4.mul(f32x4.mul(s, f32x4.sub(f32x4.splat(1.0), s)), f32x4.mul(x, f32x4.splat(1.702)));
    return f32x4.mul(g, f32x4.add(s, ds));
  }
}

@inline function unary2Loop(op: i32, x: usize, g: usize, out: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, unary2V(op, v128.load(x + o), v128.load(g + o)));
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, f32x4.extract_lane(unary2V(op, f32x4.splat(load<f32>(x + o)), f32x4.splat(load<f32>(g + o))), 0));
  }
}

export function unary2_f32(op: i32, x: usize, g: usize, out: usize, i0: i32, i1: i32): void {
  if (op == GELU_BACKWARD) unary2Loop(GELU_BACKWARD, x, g, out, i0, i1);
  else unary2Loop(QUICK_GELU_BACKWARD, x, g, out, i0, i1);
}

@inline function biasGeluV(h: v128, g: usize, o: usize): v128 {
  return g ? geluGradV(h, v128.load(g + o)) : geluV(h);
}

/** Rows [r0, r1) of x [rows, D] and bias [D]: bias_gelu, out = gelu(x + bias) (g = 0), or bias_gelu_backward,
 *  out = g * gelu'(x + bias); the sum is never stored. */
export function bias_gelu_f32(x: usize, b: usize, g: usize, out: usize, D: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const row = <usize>r * <usize>D << 2;
    let j = 0;
    for (; j + 4 <= D; j += 4) {
      const o = row + (<usize>j << 2);
      v128.store(out + o, biasGeluV(f32x4.add(v128.load(x + o), v128.load(b + (<usize>j << 2))), g, o));
    }
    for (; j < D; j++) { // tails through the vector code: the same bits as a lane of the body
      const o = row + (<usize>j << 2);
      const h = f32x4.splat(load<f32>(x + o) + load<f32>(b + (<usize>j << 2)));
      store<f32>(out + o, f32x4.extract_lane(g ? geluGradV(h, f32x4.splat(load<f32>(g + o))) : geluV(h), 0));
    }
  }
}

/** out = x * scale + shift */
export function affine_f32(x: usize, out: usize, scale: f32, shift: f32, i0: i32, i1: i32): void {
  const vs = f32x4.splat(scale), vb = f32x4.splat(shift);
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(out + (<usize>i << 2), fma4(v128.load(x + (<usize>i << 2)), vs, vb));
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), load<f32>(x + (<usize>i << 2)) * scale + shift);
}

export function pow_scalar_f32(x: usize, out: usize, e: f32, i0: i32, i1: i32): void {
  let i = i0;
  if (e == 2.0) {
    for (; i + 4 <= i1; i += 4) { const v = v128.load(x + (<usize>i << 2)); v128.store(out + (<usize>i << 2), f32x4.mul(v, v)); }
  } else if (e == 1.0) {
    for (; i + 4 <= i1; i += 4) v128.store(out + (<usize>i << 2), v128.load(x + (<usize>i << 2)));
  } else if (e == 0.5) {
    for (; i + 4 <= i1; i += 4) v128.store(out + (<usize>i << 2), f32x4.sqrt(v128.load(x + (<usize>i << 2))));
  }
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), Mathf.pow(load<f32>(x + (<usize>i << 2)), e));
}

@inline function binV(op: i32, a: v128, b: v128): v128 {
  const one = f32x4.splat(1.0);
  switch (op) {
    case ADD: return f32x4.add(a, b);
    case SUB: return f32x4.sub(a, b);
    case MUL: return f32x4.mul(a, b);
    case DIV: return f32x4.div(a, b);
    case MAXIMUM: return f32x4.max(a, b);
    case MINIMUM: return f32x4.min(a, b);
    case EQ: return v128.and(f32x4.eq(a, b), one);
    case NE: return v128.and(f32x4.ne(a, b), one);
    case LT: return v128.and(f32x4.lt(a, b), one);
    case LE: return v128.and(f32x4.le(a, b), one);
    case GT: return v128.and(f32x4.gt(a, b), one);
    case GE: return v128.and(f32x4.ge(a, b), one);
    default: unreachable(); return a;
  }
}

@inline function binS(op: i32, a: f32, b: f32): f32 {
  if (op == POW) return Mathf.pow(a, b);
  return f32x4.extract_lane(binV(op, f32x4.splat(a), f32x4.splat(b)), 0);
}

@inline function binI(op: i32, a: i32, b: i32): i32 {
  switch (op) {
    case ADD: return a + b;
    case SUB: return a - b;
    case MUL: return a * b;
    case DIV: return b == 0 ? 0 : a / b;
    case MAXIMUM: return a > b ? a : b;
    case MINIMUM: return a < b ? a : b;
    case EQ: return i32(a == b);
    case NE: return i32(a != b);
    case LT: return i32(a < b);
    case LE: return i32(a <= b);
    case GT: return i32(a > b);
    case GE: return i32(a >= b);
    default: unreachable(); return 0;
  }
}

/** Offset (in elements) of outer row o for one operand: sum of coordinates times that operand's strides. */
@inline export function rowOffset(o: i32, rank: i32, shape: usize, strides: usize): i32 {
  let off = 0, rem = o;
  for (let d = rank - 2; d >= 0; d--) {
    const s = load<i32>(shape + (<usize>d << 2));
    const q = rem / s;
    off += (rem - q * s) * load<i32>(strides + (<usize>d << 2));
    rem = q;
  }
  return off;
}

@inline function binRow(op: i32, pa: usize, pb: usize, po: usize, n: i32, sa: i32, sb: i32): void {
  let j = 0;
  if (op != POW) {
    if (sa == 1 && sb == 1) {
      for (; j + 4 <= n; j += 4) { const o = <usize>j << 2; v128.store(po + o, binV(op, v128.load(pa + o), v128.load(pb + o))); }
    } else if (sa == 1 && sb == 0) {
      const vb = v128.load32_splat(pb);
      for (; j + 4 <= n; j += 4) { const o = <usize>j << 2; v128.store(po + o, binV(op, v128.load(pa + o), vb)); }
    } else if (sa == 0 && sb == 1) {
      const va = v128.load32_splat(pa);
      for (; j + 4 <= n; j += 4) { const o = <usize>j << 2; v128.store(po + o, binV(op, va, v128.load(pb + o))); }
    }
  }
  for (; j < n; j++) {
    store<f32>(po + (<usize>j << 2), binS(op, load<f32>(pa + (<usize>(j * sa) << 2)), load<f32>(pb + (<usize>(j * sb) << 2))));
  }
}

@inline function binRowI(op: i32, pa: usize, pb: usize, po: usize, n: i32, sa: i32, sb: i32): void {
  for (let j = 0; j < n; j++) {
    store<i32>(po + (<usize>j << 2), binI(op, load<i32>(pa + (<usize>(j * sa) << 2)), load<i32>(pb + (<usize>(j * sb) << 2))));
  }
}

/** Output rows [o0, o1) of a broadcast binary op on T (f32: SIMD rows, i32: scalar rows). */
@inline function binLoop<T>(op: i32, a: usize, b: usize, out: usize, rank: i32, desc: usize, o0: i32, o1: i32): void {
  const shape = desc, sA = desc + (<usize>rank << 2), sB = desc + (<usize>(2 * rank) << 2);
  const n = load<i32>(shape + (<usize>(rank - 1) << 2));
  const ia = load<i32>(sA + (<usize>(rank - 1) << 2)), ib = load<i32>(sB + (<usize>(rank - 1) << 2));
  for (let o = o0; o < o1; o++) {
    const pa = a + (<usize>rowOffset(o, rank, shape, sA) << 2), pb = b + (<usize>rowOffset(o, rank, shape, sB) << 2);
    const po = out + (<usize>(o * n) << 2);
    if (isFloat<T>()) binRow(op, pa, pb, po, n, ia, ib);
    else binRowI(op, pa, pb, po, n, ia, ib);
  }
}

export function binary_f32(op: i32, a: usize, b: usize, out: usize, rank: i32, desc: usize, o0: i32, o1: i32): void {
  switch (op) {
    case ADD: binLoop<f32>(ADD, a, b, out, rank, desc, o0, o1); break;
    case SUB: binLoop<f32>(SUB, a, b, out, rank, desc, o0, o1); break;
    case MUL: binLoop<f32>(MUL, a, b, out, rank, desc, o0, o1); break;
    case DIV: binLoop<f32>(DIV, a, b, out, rank, desc, o0, o1); break;
    case POW: binLoop<f32>(POW, a, b, out, rank, desc, o0, o1); break;
    case MAXIMUM: binLoop<f32>(MAXIMUM, a, b, out, rank, desc, o0, o1); break;
    case MINIMUM: binLoop<f32>(MINIMUM, a, b, out, rank, desc, o0, o1); break;
    case EQ: binLoop<f32>(EQ, a, b, out, rank, desc, o0, o1); break;
    case NE: binLoop<f32>(NE, a, b, out, rank, desc, o0, o1); break;
    case LT: binLoop<f32>(LT, a, b, out, rank, desc, o0, o1); break;
    case LE: binLoop<f32>(LE, a, b, out, rank, desc, o0, o1); break;
    case GT: binLoop<f32>(GT, a, b, out, rank, desc, o0, o1); break;
    case GE: binLoop<f32>(GE, a, b, out, rank, desc, o0, o1); break;
    default: unreachable();
  }
}

export function binary_i32(op: i32, a: usize, b: usize, out: usize, rank: i32, desc: usize, o0: i32, o1: i32): void {
  binLoop<i32>(op, a, b, out, rank, desc, o0, o1);
}

/** where(cond, a, b): 4-byte values moved by bits; cond is tested as float (condFloat) or int. desc: shape, sC, sA, sB. */
export function where_32(cond: usize, a: usize, b: usize, out: usize, condFloat: i32, rank: i32, desc: usize, o0: i32, o1: i32): void {
  const shape = desc, sC = desc + (<usize>rank << 2), sA = desc + (<usize>(2 * rank) << 2), sB = desc + (<usize>(3 * rank) << 2);
  const last = <usize>(rank - 1) << 2;
  const n = load<i32>(shape + last);
  const ic = load<i32>(sC + last), ia = load<i32>(sA + last), ib = load<i32>(sB + last);
  for (let o = o0; o < o1; o++) {
    const pc = cond + (<usize>rowOffset(o, rank, shape, sC) << 2);
    const pa = a + (<usize>rowOffset(o, rank, shape, sA) << 2), pb = b + (<usize>rowOffset(o, rank, shape, sB) << 2);
    const po = out + (<usize>(o * n) << 2);
    for (let j = 0; j < n; j++) {
      const t = condFloat ? load<f32>(pc + (<usize>(j * ic) << 2)) != 0 : load<i32>(pc + (<usize>(j * ic) << 2)) != 0;
      store<u32>(po + (<usize>j << 2), t ? load<u32>(pa + (<usize>(j * ia) << 2)) : load<u32>(pb + (<usize>(j * ib) << 2)));
    }
  }
}

/** int32 x * scale + shift, computed in float64 and truncated toward zero (like the reference). */
export function affine_i32(x: usize, out: usize, scale: f64, shift: f64, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) store<i32>(out + (<usize>i << 2), <i32>(<f64>load<i32>(x + (<usize>i << 2)) * scale + shift));
}
