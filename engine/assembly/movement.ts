// Movement and indexing kernels on 4-byte elements (float32 and int32 alike: values are moved as bits),
// plus fill, cast and the resize kernels.
// Does not: validate indices (the host checks them before calling), allocate, or handle 8-byte dtypes.
// Invariants: copy_strided is the one strided copy behind permute, slice, expand, pad and concat:
// dst[dOff(i)] = src[sOff(i)] over a box `shape`, with element strides per side (desc: shape, srcStrides,
// dstStrides); rows [o0, o1) of the box's leading dims may go to different threads.

import { rowOffset } from './elementwise';

export function copy_strided(src: usize, dst: usize, rank: i32, desc: usize, o0: i32, o1: i32): void {
  const shape = desc, ss = desc + (<usize>rank << 2), ds = desc + (<usize>(2 * rank) << 2);
  const last = <usize>(rank - 1) << 2;
  const n = load<i32>(shape + last), is = load<i32>(ss + last), id = load<i32>(ds + last);
  for (let o = o0; o < o1; o++) {
    const ps = src + (<usize>rowOffset(o, rank, shape, ss) << 2), pd = dst + (<usize>rowOffset(o, rank, shape, ds) << 2);
    if (is == 1 && id == 1) memory.copy(pd, ps, <usize>n << 2);
    else if (is == 0) { const v = load<u32>(ps); for (let j = 0; j < n; j++) store<u32>(pd + (<usize>(j * id) << 2), v); }
    else for (let j = 0; j < n; j++) store<u32>(pd + (<usize>(j * id) << 2), load<u32>(ps + (<usize>(j * is) << 2)));
  }
}

export function fill_32(dst: usize, bits: u32, i0: i32, i1: i32): void {
  const v = i32x4.splat(bits);
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(dst + (<usize>i << 2), v);
  for (; i < i1; i++) store<u32>(dst + (<usize>i << 2), bits);
}

/** mode 0: f32 -> i32 (truncation toward zero, saturating); 1: i32 -> f32 */
export function cast_32(src: usize, dst: usize, mode: i32, n: i32): void {
  if (mode == 0) for (let i = 0; i < n; i++) store<i32>(dst + (<usize>i << 2), <i32>load<f32>(src + (<usize>i << 2)));
  else for (let i = 0; i < n; i++) store<f32>(dst + (<usize>i << 2), <f32>load<i32>(src + (<usize>i << 2)));
}

/** x [outer, A, inner], idx [K] -> out [outer, K, inner] */
export function index_select_32(x: usize, idx: usize, out: usize, outer: i32, A: i32, K: i32, inner: i32): void {
  const rowBytes = <usize>inner << 2;
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < K; k++) {
      const r = load<i32>(idx + (<usize>k << 2));
      memory.copy(out + <usize>(o * K + k) * rowBytes, x + <usize>(o * A + r) * rowBytes, rowBytes);
    }
  }
}

/** out [outer, size, inner] = 0, then out[o, idx[k], :] += g[o, k, :] for g [outer, K, inner] */
export function index_add_f32(g: usize, idx: usize, out: usize, outer: i32, size: i32, K: i32, inner: i32): void {
  memory.fill(out, 0, <usize>(outer * size * inner) << 2);
  for (let o = 0; o < outer; o++) {
    for (let k = 0; k < K; k++) {
      const r = load<i32>(idx + (<usize>k << 2));
      const pd = out + (<usize>((o * size + r) * inner) << 2), ps = g + (<usize>((o * K + k) * inner) << 2);
      let j = 0;
      for (; j + 4 <= inner; j += 4) { const b = <usize>j << 2; v128.store(pd + b, f32x4.add(v128.load(pd + b), v128.load(ps + b))); }
      for (; j < inner; j++) { const b = <usize>j << 2; store<f32>(pd + b, load<f32>(pd + b) + load<f32>(ps + b)); }
    }
  }
}

/** torch.gather along `axis`: out / idx have shape idxShape; x element of out i is x[coords(i) with coords[axis] = idx[i]].
 *  scatter (mode 1): out (xStrides' tensor, zeroed by the host) [coords with idx] += g[i]. desc: idxShape[rank], xStrides[rank]. */
export function gather_32(x: usize, idx: usize, out: usize, mode: i32, rank: i32, axis: i32, desc: usize, n: i32): void {
  const shape = desc, xs = desc + (<usize>rank << 2);
  for (let i = 0; i < n; i++) {
    let rem = i, off = 0;
    for (let d = rank - 1; d >= 0; d--) {
      const s = load<i32>(shape + (<usize>d << 2));
      const q = rem / s;
      const c = d == axis ? load<i32>(idx + (<usize>i << 2)) : rem - q * s;
      off += c * load<i32>(xs + (<usize>d << 2));
      rem = q;
    }
    if (mode == 0) store<u32>(out + (<usize>i << 2), load<u32>(x + (<usize>off << 2)));
    else store<f32>(x + (<usize>off << 2), load<f32>(x + (<usize>off << 2)) + load<f32>(out + (<usize>i << 2)));
  }
}

// ---- resize of [P, H, W] planes ----

@inline function srcCoord(d: i32, inS: i32, outS: i32, alignCorners: i32, clampNeg: bool): f64 {
  if (alignCorners) return outS > 1 ? <f64>d * <f64>(inS - 1) / <f64>(outS - 1) : 0;
  const s = (<f64>d + 0.5) * <f64>inS / <f64>outS - 0.5;
  return clampNeg && s < 0 ? 0 : s;
}

/** bilinear forward (mode 0): out [P, oh, ow] from x [P, ih, iw]; backward (mode 1): x (zeroed by the host) += weights * out. */
export function resize_bilinear_f32(x: usize, out: usize, mode: i32, P: i32, ih: i32, iw: i32, oh: i32, ow: i32, alignCorners: i32): void {
  for (let y = 0; y < oh; y++) {
    const sy = srcCoord(y, ih, oh, alignCorners, true);
    const y0 = min(<i32>Math.floor(sy), ih - 1), y1 = min(y0 + 1, ih - 1);
    const ly = <f32>(sy - <f64>y0), hy: f32 = 1.0 - ly;
    for (let xq = 0; xq < ow; xq++) {
      const sx = srcCoord(xq, iw, ow, alignCorners, true);
      const x0 = min(<i32>Math.floor(sx), iw - 1), x1 = min(x0 + 1, iw - 1);
      const lx = <f32>(sx - <f64>x0), hx: f32 = 1.0 - lx;
      for (let p = 0; p < P; p++) {
        const base = x + (<usize>(p * ih * iw) << 2);
        const po = out + (<usize>((p * oh + y) * ow + xq) << 2);
        const a00 = base + (<usize>(y0 * iw + x0) << 2), a01 = base + (<usize>(y0 * iw + x1) << 2);
        const a10 = base + (<usize>(y1 * iw + x0) << 2), a11 = base + (<usize>(y1 * iw + x1) << 2);
        if (mode == 0) {
          store<f32>(po, hy * (hx * load<f32>(a00) + lx * load<f32>(a01)) + ly * (hx * load<f32>(a10) + lx * load<f32>(a11)));
        } else {
          const g = load<f32>(po);
          store<f32>(a00, load<f32>(a00) + hy * hx * g);
          store<f32>(a01, load<f32>(a01) + hy * lx * g);
          store<f32>(a10, load<f32>(a10) + ly * hx * g);
          store<f32>(a11, load<f32>(a11) + ly * lx * g);
        }
      }
    }
  }
}
