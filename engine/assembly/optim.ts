// Optimiser updates, in place: AdamW exactly as HF transformers.AdamW (spec §6.3) and SGD with momentum.
// Does not: allocate state (the host passes m, v, momentum buffers) or clip gradients.
// Invariants: AdamW: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr sqrt(1-b2^t)/(1-b1^t) m/(sqrt(v)+eps);
// then p -= lr wd p. step sizes are computed by the host in float64 and passed as float32 scalars.

export function adamw_step_f32(p: usize, g: usize, m: usize, v: usize, n: i32, b1: f32, b2: f32, eps: f32, stepSize: f32, decay: f32): void {
  for (let i = 0; i < n; i++) {
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
export function sgd_step_f32(p: usize, g: usize, buf: usize, hasBuf: i32, n: i32, lr: f32, momentum: f32, wd: f32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const pi = load<f32>(p + o);
    let d = load<f32>(g + o) + wd * pi;
    if (hasBuf) { d = momentum * load<f32>(buf + o) + d; store<f32>(buf + o, d); }
    store<f32>(p + o, pi - lr * d);
  }
}
