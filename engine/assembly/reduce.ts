// Reductions and fused row routines: sum, max/argmax, softmax / log-softmax (+ backward, additive mask),
// layer norm (+ backward), cross-entropy and BCE-with-logits (+ backward).
// Does not: allocate, validate labels or shapes (the host does), or thread the backward reductions.
// Invariants: rows are the last axis, contiguous; a row's result depends only on that row (so splitting
// rows [r0, r1) across threads is bit-identical); sums use 4 SIMD lanes then a fixed lane order.

import { fma4, hsum, hmax, vexp, sexp } from './vmath';
import { rowOffset } from './elementwise';

@inline function rowSum(p: usize, n: i32): f32 {
  let v = f32x4.splat(0), j = 0;
  for (; j + 4 <= n; j += 4) v = f32x4.add(v, v128.load(p + (<usize>j << 2)));
  let s = hsum(v);
  for (; j < n; j++) s += load<f32>(p + (<usize>j << 2));
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
    for (; j + 4 <= n; j += 4) v = f32x4.max(v, v128.load(p + (<usize>j << 2)));
    m = hmax(v);
  }
  for (; j < n; j++) m = max(m, load<f32>(p + (<usize>j << 2)));
  return m;
}

/** out[...] (zeroed here) += x over the reduced dims. desc: shape[rank], outStride[rank] (0 on reduced dims). */
export function sum_f32(x: usize, out: usize, outN: i32, rank: i32, desc: usize): void {
  memory.fill(out, 0, <usize>outN << 2);
  const shape = desc, so = desc + (<usize>rank << 2);
  const n = load<i32>(shape + (<usize>(rank - 1) << 2));
  const inner = load<i32>(so + (<usize>(rank - 1) << 2));
  let rows = 1;
  for (let d = 0; d < rank - 1; d++) rows *= load<i32>(shape + (<usize>d << 2));
  for (let o = 0; o < rows; o++) {
    const px = x + (<usize>(o * n) << 2);
    const po = out + (<usize>rowOffset(o, rank, shape, so) << 2);
    if (inner == 0) {
      store<f32>(po, load<f32>(po) + rowSum(px, n));
    } else {
      let j = 0;
      for (; j + 4 <= n; j += 4) { const b = <usize>j << 2; v128.store(po + b, f32x4.add(v128.load(po + b), v128.load(px + b))); }
      for (; j < n; j++) { const b = <usize>j << 2; store<f32>(po + b, load<f32>(po + b) + load<f32>(px + b)); }
    }
  }
}

/** x [outer, R, inner] -> values / first-max indices [outer, inner]; wantV / wantI select the outputs. */
export function max_f32(x: usize, outV: usize, outI: usize, wantV: i32, wantI: i32, outer: i32, R: i32, inner: i32): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let p = x + (<usize>(o * R * inner + i) << 2);
      let best = load<f32>(p), bi = 0;
      for (let r = 1; r < R; r++) {
        p += <usize>inner << 2;
        const v = load<f32>(p);
        if (v > best || (v != v && best == best)) { best = v; bi = r; }
      }
      const q = <usize>(o * inner + i) << 2;
      if (wantV) store<f32>(outV + q, best);
      if (wantI) store<i32>(outI + q, bi);
    }
  }
}

/** Rows [r0, r1) of softmax (logMode 0) or log-softmax (1) of x (+ mask) along the last axis (length D).
 *  mask: hasMask; desc: rowShape[rank-1] (x's leading dims) then mask strides for those dims, then the
 *  mask's last-axis stride (0 or 1). rank = number of leading dims + 1. */
export function softmax_f32(x: usize, mask: usize, out: usize, hasMask: i32, logMode: i32, D: i32, rank: i32, desc: usize, r0: i32, r1: i32): void {
  const shape = desc, sm = desc + (<usize>rank << 2);
  const mInner = hasMask ? load<i32>(sm + (<usize>(rank - 1) << 2)) : 0;
  for (let r = r0; r < r1; r++) {
    const px = x + (<usize>(r * D) << 2), po = out + (<usize>(r * D) << 2);
    let src = px;
    if (hasMask) {
      const pm = mask + (<usize>rowOffset(r, rank, shape, sm) << 2);
      if (mInner == 1) {
        let j = 0;
        for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(po + b, f32x4.add(v128.load(px + b), v128.load(pm + b))); }
        for (; j < D; j++) { const b = <usize>j << 2; store<f32>(po + b, load<f32>(px + b) + load<f32>(pm + b)); }
      } else {
        const mv = load<f32>(pm);
        for (let j = 0; j < D; j++) { const b = <usize>j << 2; store<f32>(po + b, load<f32>(px + b) + mv); }
      }
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

/** softmax_backward (logMode 0): dx = y (g - <g, y>); log_softmax_backward (1): dx = g - exp(y) sum(g). */
export function softmax_backward_f32(y: usize, g: usize, dx: usize, logMode: i32, D: i32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const py = y + (<usize>(r * D) << 2), pg = g + (<usize>(r * D) << 2), pd = dx + (<usize>(r * D) << 2);
    let j = 0;
    if (logMode) {
      const s = rowSum(pg, D), vs = f32x4.splat(s);
      for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(pd + b, f32x4.sub(v128.load(pg + b), f32x4.mul(vexp(v128.load(py + b)), vs))); }
      for (; j < D; j++) { const b = <usize>j << 2; store<f32>(pd + b, load<f32>(pg + b) - sexp(load<f32>(py + b)) * s); }
    } else {
      const d = rowDot(py, pg, D), vd = f32x4.splat(d);
      for (; j + 4 <= D; j += 4) { const b = <usize>j << 2; v128.store(pd + b, f32x4.mul(v128.load(py + b), f32x4.sub(v128.load(pg + b), vd))); }
      for (; j < D; j++) { const b = <usize>j << 2; store<f32>(pd + b, load<f32>(py + b) * (load<f32>(pg + b) - d)); }
    }
  }
}

/** Rows [r0, r1): y = (x - mean) rstd w + b; mean / rstd per row (biased variance, two passes). */
export function layer_norm_f32(x: usize, w: usize, bias: usize, y: usize, mean: usize, rstd: usize, D: i32, eps: f32, r0: i32, r1: i32): void {
  for (let r = r0; r < r1; r++) {
    const px = x + (<usize>(r * D) << 2), py = y + (<usize>(r * D) << 2);
    const mu = rowSum(px, D) / <f32>D;
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
export function cross_entropy_f32(x: usize, labels: usize, loss: usize, B: i32, C: i32, ignoreIndex: i32): void {
  for (let r = 0; r < B; r++) {
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
export function cross_entropy_backward_f32(x: usize, labels: usize, g: usize, dx: usize, B: i32, C: i32, ignoreIndex: i32): void {
  for (let r = 0; r < B; r++) {
    const lab = load<i32>(labels + (<usize>r << 2));
    const pd = dx + (<usize>(r * C) << 2);
    if (lab == ignoreIndex) { memory.fill(pd, 0, <usize>C << 2); continue; }
    softmax_f32(x, 0, dx, 0, 0, C, 1, 0, r, r + 1);
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
