// Shape arithmetic shared by the op table and the kernels: broadcasting, axis normalisation, strides.
// Does not allocate tensors or know about backends.
// Invariants: shapes are arrays of non-negative integers, row-major; a scalar has shape []. Every error names the
// op at fault and the shapes involved, e.g. "add: cannot broadcast shapes [2,3] and [4]".

export type Shape = readonly number[];

export function shapeStr(s: Shape): string {
  return `[${s.join(',')}]`;
}

export function numel(s: Shape): number {
  let n = 1;
  for (const d of s) n *= d;
  return n;
}

/** Row-major (contiguous) strides of a shape, in elements. */
export function stridesOf(s: Shape): number[] {
  const st = new Array<number>(s.length);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s[i];
  }
  return st;
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** numpy broadcasting of any number of shapes; throws naming op and all shapes. */
export function broadcastShapes(op: string, ...shapes: Shape[]): number[] {
  let nd = 0;
  for (const s of shapes) nd = Math.max(nd, s.length);
  const out = new Array<number>(nd).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = nd - s.length + i;
      const d = s[i];
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else throw new Error(`${op}: cannot broadcast shapes ${shapes.map(shapeStr).join(' and ')}`);
    }
  }
  return out;
}

/**
 * Strides for reading a tensor of shape `s` as if broadcast to `out` (0 stride on broadcast axes).
 * `s` must be broadcastable to `out` (checked by broadcastShapes beforehand).
 */
export function broadcastStrides(s: Shape, out: Shape): number[] {
  const st = stridesOf(s);
  const res = new Array<number>(out.length).fill(0);
  for (let i = 0; i < s.length; i++) {
    const o = out.length - s.length + i;
    res[o] = s[i] === 1 && out[o] !== 1 ? 0 : st[i];
  }
  return res;
}

/**
 * Strides of `shape` read as broadcast to `out` (right-aligned; 0 on broadcast axes), checked: throws naming `who`
 * when `shape` does not broadcast to `out`. Used by the fast backends' kernel planning.
 */
export function broadcastStridesChecked(shape: Shape, out: Shape, who: string): number[] {
  const st = stridesOf(shape);
  const res = new Array<number>(out.length).fill(0);
  const off = out.length - shape.length;
  if (off < 0) throw new Error(`${who}: input shape [${shape}] has more axes than the output [${out}]`);
  for (let i = 0; i < shape.length; i++) {
    if (shape[i] === out[i + off]) res[i + off] = shape[i] === 1 ? 0 : st[i];
    else if (shape[i] === 1) res[i + off] = 0;
    else throw new Error(`${who}: shape [${shape}] does not broadcast to [${out}]`);
  }
  return res;
}

/**
 * Drops size-1 axes and merges neighbouring axes that are contiguous in every stride set, so kernels see few axes
 * and contiguous copies are 1-D. Always returns rank >= 1 (all size-1 axes become shape [1], stride 1).
 */
export function coalesce(shape: Shape, strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const sh: number[] = [];
  const st: number[][] = strides.map(() => []);
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 1) continue;
    const k = sh.length - 1;
    if (k >= 0 && strides.every((s, j) => st[j][k] === s[d] * shape[d])) {
      sh[k] *= shape[d];
      strides.forEach((s, j) => { st[j][k] = s[d]; });
    } else {
      sh.push(shape[d]);
      strides.forEach((s, j) => st[j].push(s[d]));
    }
  }
  if (sh.length === 0) { sh.push(1); st.forEach((s) => s.push(1)); }
  return { shape: sh, strides: st };
}

export function checkShape(op: string, s: Shape): void {
  for (const d of s) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`${op}: invalid shape ${shapeStr(s)}`);
  }
}

/** Normalise an axis (negative counts from the end) against `ndim`; throws naming the op. */
export function normAxis(op: string, axis: number, ndim: number): number {
  if (!Number.isInteger(axis)) throw new Error(`${op}: axis ${axis} is not an integer`);
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) throw new Error(`${op}: axis ${axis} out of range for a tensor of rank ${ndim}`);
  return a;
}

/** Normalise, sort and deduplicate axes; undefined means all axes. */
export function normAxes(op: string, axes: number | readonly number[] | undefined, ndim: number): number[] {
  if (axes === undefined) return Array.from({ length: ndim }, (_, i) => i);
  const list = typeof axes === 'number' ? [axes] : axes;
  const set = new Set(list.map((a) => normAxis(op, a, ndim)));
  return [...set].sort((x, y) => x - y);
}

/** Shape after reducing `axes` (sorted) with or without keepdims. */
export function reducedShape(s: Shape, axes: readonly number[], keepdims: boolean): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (axes.includes(i)) {
      if (keepdims) out.push(1);
    } else out.push(s[i]);
  }
  return out;
}

/** Resolve a reshape target (one -1 allowed) against a total size; throws naming both shapes. */
export function resolveReshape(op: string, from: Shape, to: readonly number[]): number[] {
  const total = numel(from);
  let infer = -1;
  let known = 1;
  const out = to.slice();
  for (let i = 0; i < out.length; i++) {
    const d = out[i];
    if (d === -1) {
      if (infer >= 0) throw new Error(`${op}: more than one -1 in target shape ${shapeStr(to)}`);
      infer = i;
    } else if (!Number.isInteger(d) || d < 0) {
      throw new Error(`${op}: invalid target shape ${shapeStr(to)}`);
    } else known *= d;
  }
  if (infer >= 0) {
    if (known === 0 || total % known !== 0) throw new Error(`${op}: cannot reshape ${shapeStr(from)} to ${shapeStr(to)}`);
    out[infer] = total / known;
  }
  if (numel(out) !== total) throw new Error(`${op}: cannot reshape ${shapeStr(from)} to ${shapeStr(to)}`);
  return out;
}

/** Multi-index iteration helper: advance `idx` (row-major) within `shape`; returns false when done. */
export function nextIndex(idx: number[], shape: Shape): boolean {
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i]++;
    if (idx[i] < shape[i]) return true;
    idx[i] = 0;
  }
  return false;
}

/** [..., H, W] resized to [..., outH, outW]; throws naming the op. */
export function resizedShape(op: string, s: Shape, outH: number, outW: number): number[] {
  if (s.length < 2) throw new Error(`${op}: input must be [..., H, W], got ${shapeStr(s)}`);
  if (!Number.isInteger(outH) || !Number.isInteger(outW) || outH < 1 || outW < 1) {
    throw new Error(`${op}: invalid output size ${outH}x${outW}`);
  }
  return [...s.slice(0, -2), outH, outW];
}
