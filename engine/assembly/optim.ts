// Optimiser updates, in place: AdamW exactly as HF transformers.AdamW (spec §6.3) and SGD with momentum.
// Does not: allocate state (the host passes m, v, momentum buffers) or clip gradients.
// Invariants: AdamW: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr sqrt(1-b2^t)/(1-b1^t) m/(sqrt(v)+eps);
// then p -= lr wd p. Step sizes are computed by the host in float64 and passed as float32 scalars. Vector and
// scalar paths do the same float32 operations in the same order (no fused multiply-add), so element ranges
// [i0, i1) may go to different threads with bit-identical results.

export function adamw_step_f32(p: usize, g: usize, m: usize, v: usize, b1: f32, b2: f32, eps: f32, stepSize: f32, decay: f32, i0: i32, i1: i32): void {
  const vb1 = f32x4.splat(b1), vc1 = f32x4.splat(1 - b1), vb2 = f32x4.splat(b2), vc2 = f32x4.splat(1 - b2);
  const veps = f32x4.splat(eps), vstep = f32x4.splat(stepSize), vdec = f32x4.splat(decay);
  let i = i0;
  for (; i + 4 <= i1; i += 4) {
    const o = <usize>i << 2;
    const gi = v128.load(g + o);
    const mi = f32x4.add(f32x4.mul(vb1, v128.load(m + o)), f32x4.mul(vc1, gi));
    const vi = f32x4.add(f32x4.mul(vb2, v128.load(v + o)), f32x4.mul(f32x4.mul(vc2, gi), gi));
    v128.store(m + o, mi); v128.store(v + o, vi);
    let pi = f32x4.sub(v128.load(p + o), f32x4.mul(vstep, f32x4.div(mi, f32x4.add(f32x4.sqrt(vi), veps))));
    pi = f32x4.sub(pi, f32x4.mul(vdec, pi));
    v128.store(p + o, pi);
  }
  for (; i < i1; i++) {
    const o = <usize>i << 2;
    const gi = load<f32>(g + o);
    const mi = b1 * load<f32>(m + o) + (1 - b1) * gi;
    const vi = b2 * load<f32>(v + o) + (1 - b2) * gi * gi;
    store<f32>(m + o, mi); store<f32>(v + o, vi);
    let pi = load<f32>(p + o) - stepSize * (mi / (Mathf.sqrt(vi) + eps));
    pi = pi - decay * pi;
    store<f32>(p + o, pi);
  }
}

/** torch SGD (dampening 0, no nesterov): d = g + wd p; buf = momentum buf + d (hasBuf); p -= lr (buf or d). */
export function sgd_step_f32(p: usize, g: usize, buf: usize, hasBuf: i32, lr: f32, momentum: f32, wd: f32, i0: i32, i1: i32): void {
  for (let i = i0; i < i1; i++) {
    const o = <usize>i << 2;
    const pi = load<f32>(p + o);
    let d = load<f32>(g + o) + wd * pi;
    if (hasBuf) { d = momentum * load<f32>(buf + o) + d; store<f32>(buf + o, d); }
    store<f32>(p + o, pi - lr * d);
  }
}
