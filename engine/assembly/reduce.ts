// Reductions and fused row routines: sum, max/argmax, softmax / log-softmax (+ backward, additive mask),
// layer norm (+ backward), cross-entropy and BCE-with-logits (+ backward). sum and max/argmax have f32 and i32
// exports over one generic body each.
// Does not: allocate, validate labels or shapes (the host does), or zero sum outputs (the host does).
// Invariants: rows are the last axis, contiguous; a row's result depends only on that row (so splitting
// rows [r0, r1) across threads is bit-identical); sums use 4 SIMD lanes then a fixed lane order.

import { fma4, hsum, hmax, vexp, sexp } from './vmath';
import { rowOffset } from './elementwise';

/** Sum of n values at p: 4 lanes, then lanes (0+1)+(2+3), then the tail in order (f32); int32 wraps. */
@inline function rowSum<T>(p: usize, n: i32): T {
  let v = v128.splat<T>(0), j = 0;
  for (; j + 4 <= n; j += 4) v = v128.add<T>(v, v128.load(p + (<usize>j << 2)));
  let s: T = isFloat<T>() ? <T>hsum(v)
    : <T>((i32x4.extract_lane(v, 0) + i32x4.extract_lane(v, 1)) + (i32x4.extract_lane(v, 2) + i32x4.extract_lane(v, 3)));
  for (; j < n; j++) s += load<T>(p + (<usize>j << 2));
  return s;
}

@inline function rowDot(p: usize, q: usize, n: i32): f32 {
  let v = f32x4.splat(0), j = 0;
  for (; j + 4 <= n; j += 4) v = fma4(v128.load(p + (<usize>j << 2)), v128.load(q + (<usize>j << 2)), v);
  let s = hsum(v);
  for (; j < n; j++) s += load<f32>(p + (<usize>j << 2)) * load<f32>(q + (<usize>j << 2));
  return s;
}

@inline function rowMax(p: usize, n: i32): f32 {
  let m: f32 = -Infinity, j = 0;
  if (n >= 4) {
    let v = f32x4.splat(-Infinity);
    for (; j + 4 <= n; j += 4) v = f32x4.pmax(v, v128.load(p + (<usize>j << 2))); // pmax (one instruction): a NaN may be skipped here, but its row still comes out NaN through exp
    m = hmax(v);
  }
  for (; j < n; j++) m = max(m, load<f32>(p + (<usize>j << 2)));
  return m;
}

/** out[...] += x over the reduced dims (the host zeroes out first), for coalesced rows [r0, r1) of the leading
 *  dims and columns [c0, c1) of the last dim. desc: shape[rank], outStride[rank] (0 on reduced dims).
 *  A last reduced dim is summed per row (4 lanes, fixed lane order); a last kept dim adds rows lane-wise, so
 *  splitting its columns changes no bit. Rows go in increasing order into each output element. */
@inline function sumRows<T>(x: usize, out: usize, rank: i32, desc: usize, r0: i32, r1: i32, c0: i32, c1: i32): void {
  const shape = desc, so = desc + (<usize>rank << 2);
  const n = load<i32>(shape + (<usize>(rank - 1) << 2));
  const inner = load<i32>(so + (<usize>(rank - 1) << 2));
  for (let o = r0; o < r1; o++) {
    const px = x + (<usize>(o * n) << 2);
    const po = out + (<usize>rowOffset(o, rank, shape, so) << 2);
    if (inner == 0) {
      store<T>(po, load<T>(po) + rowSum<T>(px, n));
    } else {
      let j = c0;
      for (; j + 4 <= c1; j += 4) { const b = <usize>j << 2; v128.store(po + b, v128.add<T>(v128.load(po + b), v128.load(px + b))); }
      for (; j < c1; j++) { const b = <usize>j << 2; store<T>(po + b, load<T>(po + b) + load<T>(px + b)); }
    }
  }
}

export function sum_f32(x: usize, out: usize, rank: i32, desc: usize, r0: i32, r1: i32, c0: i32, c1: i32): void {
  sumRows<f32>(x, out, rank, desc, r0, r1, c0, c1);
}

/** int32 sums wrap modulo 2^32 (like the reference's store into an Int32Array). */
export function sum_i32(x: usize, out: usize, rank: i32, desc: usize, r0: i32, r1: i32, c0: i32, c1: i32): void {
  sumRows<i32>(x, out, rank, desc, r0, r1, c0, c1);
}

/** x [outer, R, inner] -> values / first-max indices at flat output positions [p0, p1) of [outer, inner];
 *  wantV / wantI select the outputs. A NaN wins at its first index (float only). */
@inline function maxPositions<T>(x: usize, outV: usize, outI: usize, wantV: i32, wantI: i32, R: i32, inner: i32, p0: i32, p1: i32): void {
  for (let q = p0; q < p1; q++) {
    const o = q / inner, i = q - o * inner;
    let p = x + (<usize>(o * R * inner + i) << 2);
    let best = load<T>(p), bi = 0;
    for (let r = 1; r < R; r++) {
      p += <usize>inner << 2;
      const v = load<T>(p);
      if (v > best || (isFloat<T>() && v != v && best == best)) { best = v; bi = r; }
    }
    const b = <usize>q << 2;
    if (wantV) store<T>(outV + b, best);
    if (wantI) store<i32>(outI + b, bi);
  }
}

export function max_f32(x: usize, outV: usize, outI: usize, wantV: i32, wantI: i32, R: i32, inner: i32, p0: i32, p1: i32): void {
  maxPositions<f32>(x, outV, outI, wantV, wantI, R, inner, p0, p1);
}

export function max_i32(x: usize, outV: usize, outI: usize, wantV: i32, wantI: i32, R: i32, inner: i32, p0: i32, p1: i32): void {
  maxPositions<i32>(x, outV, outI, wantV, wantI, R, inner, p0, p1);
}

/** Rows [r0, r1) of softmax (logMode 0) or log-softmax (1) of x * scale (+ mask) along the last axis (length D).
 *  mask: hasMask; desc: rowShape[rank-1] (x's leading dims) then mask strides for those dims, then the
 *  mask's last-axis stride (0 or 1). rank = number of leading dims + 1. x * scale + mask is rounded as the separate
 *  ops would (product, then sum), into out, which the later passes read. */
export function softmax_f32(x: usize, mask: usize, out: usize, hasMask: i32, logMode: i32, D: i32, rank: i32, desc: usize, scale: f32, r0: i32, r1: i32): void {
  const vsc = f32x4.splat(scale), scaled = scale != 1.0;
  const shape = desc, sm = desc + (<usize>rank << 2);
  const mInner = hasMask ? load<i32>(sm + (<usize>(rank - 1) << 2)) : 0;
  for (let r = r0; r < r1; r++) {
    const px = x + (<usize>(r * D) << 2), po = out + (<usize>(r * D) << 2);
    let src = px;
    if (hasMask) {
      const pm = mask + (<usize>rowOffset(r, rank, shape, sm) << 2);
      if (mInner == 1) {
        let j = 0;
        for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(po + b, f32x4.add(f32x4.mul(v128.load(px + b), vsc), v128.load(pm + b))); }
        for (; j < D; j++) { const b = <usize>j << 2; store<f32>(po + b, load<f32>(px + b) * scale + load<f32>(pm + b)); }
      } else {
        const mv = load<f32>(pm), vm = f32x4.splat(mv);
        let j = 0;
        for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(po + b, f32x4.add(f32x4.mul(v128.load(px + b), vsc), vm)); }
        for (; j < D; j++) { const b = <usize>j << 2; store<f32>(po + b, load<f32>(px + b) * scale + mv); }
      }
      src = po;
    } else if (scaled) {
      let j = 0;
      for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(po + b, f32x4.mul(v128.load(px + b), vsc)); }
      for (; j < D; j++) { const b = <usize>j << 2; store<f32>(po + b, load<f32>(px + b) * scale); }
      src = po;
    }
    const m = rowMax(src, D);
    const vm = f32x4.splat(m);
    let vs = f32x4.splat(0), j = 0;
    if (logMode) {
      for (; j + 4 <= D; j += 4) vs = f32x4.add(vs, vexp(f32x4.sub(v128.load(src + (<usize>j << 2)), vm)));
      let s = hsum(vs);
      for (; j < D; j++) s += sexp(load<f32>(src + (<usize>j << 2)) - m);
      const lse = m + Mathf.log(s);
      const vl = f32x4.splat(lse);
      j = 0;
      for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(po + b, f32x4.sub(v128.load(src + b), vl)); }
      for (; j < D; j++) { const b = <usize>j << 2; store<f32>(po + b, load<f32>(src + b) - lse); }
    } else {
      for (; j + 4 <= D; j += 4) {
        const b = <usize>j << 2;
        const e = vexp(f32x4.sub(v128.load(src + b), vm));
        v128.store(po + b, e); vs = f32x4.add(vs, e);
      }
      let s = hsum(vs);
      for (; j < D; j++) { const b = <usize>j << 2; const e = sexp(load<f32>(src + b) - m); store<f32>(po + b, e); s += e; }
      const inv: f32 = 1.0 / s;
      const vi = f32x4.splat(inv);
      j = 0;
      for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(po + b, f32x4.mul(v128.load(po + b), vi)); }
      for (; j < D; j++) { const b = <usize>j << 2; store<f32>(po + b, load<f32>(po + b) * inv); }
    }
  }
}

/** softmax_backward (logMode 0): dx = y (g - <g, y>) scale; log_softmax_backward (1): dx = (g - exp(y) sum(g)) scale. */
export function softmax_backward_f32(y: usize, g: usize, dx: usize, logMode: i32, D: i32, scale: f32, r0: i32, r1: i32): void {
  const vsc = f32x4.splat(scale);
  for (let r = r0; r < r1; r++) {
    const py = y + (<usize>(r * D) << 2), pg = g + (<usize>(r * D) << 2), pd = dx + (<usize>(r * D) << 2);
    let j = 0;
    if (logMode) {
      const s = rowSum<f32>(pg, D), vs = f32x4.splat(s);
      for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(pd + b, f32x4.mul(f32x4.sub(v128.load(pg + b), f32x4.mul(vexp(v128.load(py + b)), vs)), vsc)); }
      for (; j < D; j++) { const b = <usize>j << 2; store<f32>(pd + b, (load<f32>(pg + b) - sexp(load<f32>(py + b)) * s) * scale); }
    } else {
      const d = rowDot(py, pg, D), vd = f32x4.splat(d);
      for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(pd + b, f32x4.mul(f32x4.mul(v128.load(py + b), f32x4.sub(v128.load(pg + b), vd)), vsc)); }
      for (; j < D; j++) { const b = <usize>j << 2; store<f32>(pd + b, load<f32>(py + b) * (load<f32>(pg + b) - d) * scale); }
    }
  }
}

/** Rows [r0, r1): y = (x - mean) rstd w + b; mean / rstd per row (biased variance, two passes). */
export function layer_norm_f32(x: usize, w: usize, bias: usize, y: usize, mean: usize, rstd: usize, D: i32, eps: f32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const px = x + (<usize>(r * D) << 2), py = y + (<usize>(r * D) << 2);
    const mu = rowSum<f32>(px, D) / <f32>D;
    const vmu = f32x4.splat(mu);
    let vv = f32x4.splat(0), j = 0;
    for (; j + 4 <= D; j += 4) { const d = f32x4.sub(v128.load(px + (<usize>j << 2)), vmu); vv = fma4(d, d, vv); }
    let ss = hsum(vv);
    for (; j < D; j++) { const d = load<f32>(px + (<usize>j << 2)) - mu; ss += d * d; }
    const rs: f32 = 1.0 / Mathf.sqrt(ss / <f32>D + eps);
    store<f32>(mean + (<usize>r << 2), mu);
    store<f32>(rstd + (<usize>r << 2), rs);
    const vr = f32x4.splat(rs);
    j = 0;
    for (; j + 4 <= D; j += 4) {
      const b = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(px + b), vmu), vr);
      v128.store(py + b, fma4(xh, v128.load(w + b), v128.load(bias + b)));
    }
    for (; j < D; j++) { const b = <usize>j << 2; store<f32>(py + b, (load<f32>(px + b) - mu) * rs * load<f32>(w + b) + load<f32>(bias + b)); }
  }
}

/** dx rows [r0, r1); dw / db accumulate over those rows (zeroed here when zeroWB). */
export function layer_norm_backward_f32(g: usize, x: usize, w: usize, mean: usize, rstd: usize, dx: usize, dw: usize, db: usize,
  D: i32, r0: i32, r1: i32, zeroWB: i32): void {
  if (zeroWB) { memory.fill(dw, 0, <usize>D << 2); memory.fill(db, 0, <usize>D << 2); }
  for (let r = r0; r < r1; r++) {
    const px = x + (<usize>(r * D) << 2), pg = g + (<usize>(r * D) << 2), pd = dx + (<usize>(r * D) << 2);
    const mu = load<f32>(mean + (<usize>r << 2)), rs = load<f32>(rstd + (<usize>r << 2));
    const vmu = f32x4.splat(mu), vr = f32x4.splat(rs);
    let s1 = f32x4.splat(0), s2 = f32x4.splat(0), j = 0;
    for (; j + 4 <= D; j += 4) {
      const b = <usize>j << 2;
      const gv = v128.load(pg + b);
      const xh = f32x4.mul(f32x4.sub(v128.load(px + b), vmu), vr);
      const gw = f32x4.mul(gv, v128.load(w + b));
      s1 = f32x4.add(s1, gw); s2 = fma4(gw, xh, s2);
      v128.store(dw + b, fma4(gv, xh, v128.load(dw + b)));
      v128.store(db + b, f32x4.add(v128.load(db + b), gv));
    }
    let a1 = hsum(s1), a2 = hsum(s2);
    for (; j < D; j++) {
      const b = <usize>j << 2;
      const gv = load<f32>(pg + b), xh = (load<f32>(px + b) - mu) * rs, gw = gv * load<f32>(w + b);
      a1 += gw; a2 += gw * xh;
      store<f32>(dw + b, load<f32>(dw + b) + gv * xh);
      store<f32>(db + b, load<f32>(db + b) + gv);
    }
    const m1 = a1 / <f32>D, m2 = a2 / <f32>D;
    const vm1 = f32x4.splat(m1), vm2 = f32x4.splat(m2);
    j = 0;
    for (; j + 4 <= D; j += 4) {
      const b = <usize>j << 2;
      const xh = f32x4.mul(f32x4.sub(v128.load(px + b), vmu), vr);
      const gw = f32x4.mul(v128.load(pg + b), v128.load(w + b));
      v128.store(pd + b, f32x4.mul(vr, f32x4.sub(f32x4.sub(gw, vm1), f32x4.mul(xh, vm2))));
    }
    for (; j < D; j++) {
      const b = <usize>j << 2;
      const xh = (load<f32>(px + b) - mu) * rs, gw = load<f32>(pg + b) * load<f32>(w + b);
      store<f32>(pd + b, rs * (gw - m1 - xh * m2));
    }
  }
}

/** loss[b] = logsumexp(x[b]) - x[b, label]; 0 where label == ignoreIndex. */
export function cross_entropy_f32(x: usize, labels: usize, loss: usize, C: i32, ignoreIndex: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const lab = load<i32>(labels + (<usize>r << 2));
    if (lab == ignoreIndex) { store<f32>(loss + (<usize>r << 2), 0); continue; }
    const px = x + (<usize>(r * C) << 2);
    const m = rowMax(px, C), vm = f32x4.splat(m);
    let vs = f32x4.splat(0), j = 0;
    for (; j + 4 <= C; j += 4) vs = f32x4.add(vs, vexp(f32x4.sub(v128.load(px + (<usize>j << 2)), vm)));
    let s = hsum(vs);
    for (; j < C; j++) s += sexp(load<f32>(px + (<usize>j << 2)) - m);
    store<f32>(loss + (<usize>r << 2), m + Mathf.log(s) - load<f32>(px + (<usize>lab << 2)));
  }
}

/** dx[b] = (softmax(x[b]) - onehot(label)) g[b]; 0 rows where label == ignoreIndex. */
export function cross_entropy_backward_f32(x: usize, labels: usize, g: usize, dx: usize, C: i32, ignoreIndex: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const lab = load<i32>(labels + (<usize>r << 2));
    const pd = dx + (<usize>(r * C) << 2);
    if (lab == ignoreIndex) { memory.fill(pd, 0, <usize>C << 2); continue; }
    softmax_f32(x, 0, dx, 0, 0, C, 1, 0, 1.0, r, r + 1);
    const gr = load<f32>(g + (<usize>r << 2)), vg = f32x4.splat(gr);
    store<f32>(pd + (<usize>lab << 2), load<f32>(pd + (<usize>lab << 2)) - 1.0);
    let j = 0;
    for (; j + 4 <= C; j += 4) { const b = <usize>j << 2; v128.store(pd + b, f32x4.mul(v128.load(pd + b), vg)); }
    for (; j < C; j++) { const b = <usize>j << 2; store<f32>(pd + b, load<f32>(pd + b) * gr); }
  }
}

/** loss = max(x, 0) - x t + log(1 + exp(-|x|)) */
export function bce_with_logits_f32(x: usize, t: usize, out: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const b = <usize>i << 2;
    const v = load<f32>(x + b);
    store<f32>(out + b, max(v, 0) - v * load<f32>(t + b) + Mathf.log1p(Mathf.exp(-Mathf.abs(v))));
  }
}

/** dx = (sigmoid(x) - t) g */
export function bce_with_logits_backward_f32(x: usize, t: usize, g: usize, dx: usize, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const b = <usize>i << 2;
    const v = load<f32>(x + b);
    const s: f32 = v >= 0 ? 1.0 / (1.0 + Mathf.exp(-v)) : Mathf.exp(v) / (1.0 + Mathf.exp(v));
    store<f32>(dx + b, (s - load<f32>(t + b)) * load<f32>(g + b));
  }
}

/** Chunks [c0, c1) of `chunk` rows: dx for their rows, and per-chunk partial dw / db at part + c * 2D floats
 *  (dw then db), so the host can sum the chunks in a fixed order whatever the thread split. */
export function layer_norm_backward_chunks_f32(g: usize, x: usize, w: usize, mean: usize, rstd: usize, dx: usize, part: usize,
  D: i32, rows: i32, chunk: i32, c0: i32, c1: i32): void {
  for (let c = c0; c < c1; c++) {
    const p = part + (<usize>(c * 2 * D) << 2);
    layer_norm_backward_f32(g, x, w, mean, rstd, dx, p, p + (<usize>D << 2), D, c * chunk, min(rows, (c + 1) * chunk), 1);
  }
}
