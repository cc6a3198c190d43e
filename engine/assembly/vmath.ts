// Vector (f32x4) math shared by the kernels: fused multiply-add, exp, erf, tanh, sigmoid, horizontal sums.
// Does not: handle denormal inputs specially (exp flushes below -87.34 to 0), or promise correct rounding.
// Invariants: exp is Cephes' expf (about 1 ulp on [-87, 88]); erf is Cephes' erff polynomial on |x| < 1 and
// Abramowitz-Stegun 7.1.26 beyond (absolute error < 2e-7; skipped, exp included, when every lane has |x| < 1: the
// same bits); all lanes are independent.

@inline export function fma4(a: v128, b: v128, c: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, c);
  else return f32x4.add(f32x4.mul(a, b), c);
}

@inline export function hsum(v: v128): f32 {
  return (f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1)) + (f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3));
}

@inline export function hmax(v: v128): f32 {
  return max(max(f32x4.extract_lane(v, 0), f32x4.extract_lane(v, 1)), max(f32x4.extract_lane(v, 2), f32x4.extract_lane(v, 3)));
}

@inline function pow2i(n: v128): v128 { // 2^n for integer lanes n in [-126, 127]
  return i32x4.shl(i32x4.add(n, i32x4.splat(127)), 23);
}

// vexp's constants in the module's static data, splatted by one load (v128.load32_splat): measured 10% faster than
// v128.const operands, which V8 rebuilds from immediates in loop bodies.
const EXP_K: usize = memory.data<f32>([-87.33654, 88.72283, 1.44269504088896341, 0.5, -0.693359375, 2.12194440e-4,
  1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1, 1.0, Infinity]);
@inline function ek(i: i32): v128 { return v128.load32_splat(EXP_K + (<usize>i << 2)); }

export function vexp(x0: v128): v128 {
  const lo = ek(0), hi = ek(1);
  const x = f32x4.pmin(f32x4.pmax(x0, lo), hi); // NaN lanes are restored at the end
  const fx = f32x4.floor(fma4(x, ek(2), ek(3)));
  let r = fma4(fx, ek(4), x);
  r = fma4(fx, ek(5), r);
  const z = f32x4.mul(r, r);
  let y = ek(6);
  y = fma4(y, r, ek(7));
  y = fma4(y, r, ek(8));
  y = fma4(y, r, ek(9));
  y = fma4(y, r, ek(10));
  y = fma4(y, r, ek(11));
  y = f32x4.add(fma4(y, z, r), ek(12));
  const n = ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_trunc_f32x4_s(fx) : i32x4.trunc_sat_f32x4_s(fx); // |fx| <= 128 unless NaN
  const h = i32x4.shr_s(n, 1);
  y = f32x4.mul(f32x4.mul(y, pow2i(h)), pow2i(i32x4.sub(n, h)));
  // below the clamp: 0; above: +inf; NaN stays NaN
  y = v128.and(y, f32x4.ge(x0, lo));
  y = v128.bitselect(ek(13), y, f32x4.gt(x0, hi));
  return v128.bitselect(x0, y, f32x4.ne(x0, x0));
}

export function verf(x: v128): v128 {
  const z = f32x4.mul(x, x);
  const small = verfSmall(x, z);
  if (i32x4.all_true(f32x4.lt(z, f32x4.splat(1.0)))) return small; // every lane |x| < 1: no exp needed
  return verfBig(x, z, small, vexp(f32x4.neg(f32x4.pmin(z, f32x4.splat(100.0)))));
}

/** erf(x) with e = exp(-min(x^2, 100)) given (a caller that needs that exponential too computes it once). */
export function verfWithExp(x: v128, z: v128, e: v128): v128 {
  const small = verfSmall(x, z);
  if (i32x4.all_true(f32x4.lt(z, f32x4.splat(1.0)))) return small;
  return verfBig(x, z, small, e);
}

// |x| < 1: x * T(x^2), z = x^2
@inline function verfSmall(x: v128, z: v128): v128 {
  let p = f32x4.splat(7.853861353153693e-5);
  p = fma4(p, z, f32x4.splat(-8.010193625184903e-4));
  p = fma4(p, z, f32x4.splat(5.188327685732524e-3));
  p = fma4(p, z, f32x4.splat(-2.685381193529856e-2));
  p = fma4(p, z, f32x4.splat(1.128358514861418e-1));
  p = fma4(p, z, f32x4.splat(-3.761262582423300e-1));
  p = fma4(p, z, f32x4.splat(1.128379165726710));
  return f32x4.mul(x, p);
}

// |x| >= 1: 1 - poly(t) exp(-x^2), t = 1 / (1 + 0.3275911 |x|), e = exp(-min(x^2, 100)); lanes with |x| < 1 take small
@inline function verfBig(x: v128, z: v128, small: v128, e: v128): v128 {
  const ax = f32x4.abs(x);
  const t = f32x4.div(f32x4.splat(1.0), fma4(ax, f32x4.splat(0.3275911), f32x4.splat(1.0)));
  let q = f32x4.splat(1.061405429);
  q = fma4(q, t, f32x4.splat(-1.453152027));
  q = fma4(q, t, f32x4.splat(1.421413741));
  q = fma4(q, t, f32x4.splat(-0.284496736));
  q = fma4(q, t, f32x4.splat(0.254829592));
  q = f32x4.mul(q, t);
  let big = f32x4.sub(f32x4.splat(1.0), f32x4.mul(q, e));
  big = v128.or(v128.and(big, i32x4.splat(0x7fffffff)), v128.and(x, i32x4.splat(0x80000000))); // copysign
  return v128.bitselect(small, big, f32x4.lt(ax, f32x4.splat(1.0)));
}

export function vsigmoid(x: v128): v128 {
  return f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), vexp(f32x4.neg(x))));
}

export function vtanh(x: v128): v128 {
  const ax = f32x4.abs(x);
  const z = f32x4.mul(x, x);
  let p = f32x4.splat(-5.70498872745e-3);
  p = fma4(p, z, f32x4.splat(2.06390887954e-2));
  p = fma4(p, z, f32x4.splat(-5.37397155531e-2));
  p = fma4(p, z, f32x4.splat(1.33314422036e-1));
  p = fma4(p, z, f32x4.splat(-3.33332819422e-1));
  const small = fma4(f32x4.mul(p, z), x, x);
  const e = vexp(f32x4.add(ax, ax));
  let big = f32x4.sub(f32x4.splat(1.0), f32x4.div(f32x4.splat(2.0), f32x4.add(e, f32x4.splat(1.0))));
  big = v128.or(v128.and(big, i32x4.splat(0x7fffffff)), v128.and(x, i32x4.splat(0x80000000)));
  return v128.bitselect(small, big, f32x4.lt(ax, f32x4.splat(0.625)));
}

// scalar versions through the vector code, so tails agree with the vector bodies bit for bit
@inline export function sexp(x: f32): f32 { return f32x4.extract_lane(vexp(f32x4.splat(x)), 0); }
@inline export function serf(x: f32): f32 { return f32x4.extract_lane(verf(f32x4.splat(x)), 0); }
@inline export function stanh(x: f32): f32 { return f32x4.extract_lane(vtanh(f32x4.splat(x)), 0); }
@inline export function ssigmoid(x: f32): f32 { return f32x4.extract_lane(vsigmoid(f32x4.splat(x)), 0); }
