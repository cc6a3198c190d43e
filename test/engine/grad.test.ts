// Gradients of every differentiable op against central finite differences, in float64 on the reference backend.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as E from '../../engine/index.ts';
import { Generator, OP_NAMES, OPS, Tensor, apply, setBackend, tensor } from '../../engine/index.ts';
import { gradcheck, hostRandom, randomTensor } from '../helpers.ts';

setBackend('ref');
const rng = hostRandom(7);
const f64 = (shape: number[], lo = -1, hi = 1) => randomTensor(shape, rng, { dtype: 'float64', lo, hi }).keep();
const i32 = (data: number[], shape?: number[]) => tensor(data, shape, { dtype: 'int32' }).keep();
/** values well separated (for max / relu / abs / maximum kinks) */
const distinct = (shape: number[]) => {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = Array.from({ length: n }, (_, i) => ((i * 7) % n) / n - 0.5 + 0.013);
  return tensor(Float64Array.from(v), shape, { dtype: 'float64' }).keep();
};

// index / mask constants (created once: tensors made inside f would be re-created on every evaluation)
const condRow = i32([1, 0, 1], [3]);
const fillMask = i32([0, 1, 1, 0], [2, 2]);
const keepMask = i32([1, 1, 0, 1], [1, 4]);
const labelsIgnore = i32([2, -100, 0, 4]);
const labels2d = i32([1, 0, 2, 2, 1, 0], [2, 3]);
const selIdx = i32([2, 0, 2]);
const embIds = i32([1, 3, 1, 0], [2, 2]);
const addIdx = i32([1, 1, 0]);
const gatherIdx = i32([0, 2, 2, 1, 0, 0], [2, 3]);
const scatterIdx = i32([1, 0, 1, 1], [2, 2]);

const covered = new Set<string>();
function check(ops: string[], name: string, f: (xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { wrt?: number[]; rtol?: number; atol?: number } = {}) {
  test(`grad ${name}`, () => {
    gradcheck(name, f, inputs, opts);
    for (const o of ops) covered.add(o);
  });
}

// ---- binary with broadcasting -------------------------------------------------------------------------------------
check(['add'], 'add broadcast [2,3]+[3]', ([a, b]) => a.add(b), [f64([2, 3]), f64([3])]);
check(['add'], 'add broadcast [2,1,3]+[4,1]', ([a, b]) => a.add(b), [f64([2, 1, 3]), f64([4, 1])]);
check(['sub'], 'sub broadcast [3,1]-[1,5]', ([a, b]) => a.sub(b), [f64([3, 1]), f64([1, 5])]);
check(['mul'], 'mul broadcast [2,3,4]*[3,1]', ([a, b]) => a.mul(b), [f64([2, 3, 4]), f64([3, 1])]);
check(['div'], 'div broadcast [2,3]/[2,1]', ([a, b]) => a.div(b), [f64([2, 3]), f64([2, 1], 0.5, 2)]);
check(['pow'], 'pow tensor^tensor', ([a, b]) => a.pow(b), [f64([2, 3], 0.5, 2), f64([3], -1.5, 2)]);
check(['maximum'], 'maximum', ([a, b]) => a.maximum(b), [distinct([3, 4]), f64([4], -0.3, 0.3)]);
check(['minimum'], 'minimum', ([a, b]) => a.minimum(b), [distinct([3, 4]), f64([3, 1], -0.3, 0.3)]);
check(['where'], 'where int cond, broadcast', ([a, b]) => E.where(condRow, a, b), [f64([2, 3]), f64([2, 1])], { wrt: [0, 1] });
check(['where'], 'maskedFill', ([a]) => a.maskedFill(fillMask, 5), [f64([2, 2])]);
check(['affine'], 'scalar ops (affine)', ([a]) => a.add(2).mul(3).sub(1).div(4), [f64([5])]);

// ---- unary ---------------------------------------------------------------------------------------------------------
check(['neg'], 'neg', ([a]) => a.neg(), [f64([3, 2])]);
check(['exp'], 'exp', ([a]) => a.exp(), [f64([7])]);
check(['log'], 'log', ([a]) => a.log(), [f64([7], 0.2, 3)]);
check(['sqrt'], 'sqrt', ([a]) => a.sqrt(), [f64([7], 0.2, 3)]);
check(['rsqrt'], 'rsqrt', ([a]) => a.rsqrt(), [f64([7], 0.2, 3)]);
check(['abs'], 'abs', ([a]) => a.abs(), [distinct([9])]);
check(['sign'], 'sign (zero gradient)', ([a]) => a.sign().add(a), [distinct([5])]);
check(['tanh'], 'tanh', ([a]) => a.tanh(), [f64([7], -3, 3)]);
check(['sigmoid'], 'sigmoid', ([a]) => a.sigmoid(), [f64([7], -5, 5)]);
check(['relu'], 'relu', ([a]) => a.relu(), [distinct([9])]);
check(['erf'], 'erf', ([a]) => a.erf(), [f64([9], -3.5, 3.5)]);
check(['gelu'], 'gelu', ([a]) => a.gelu(), [f64([9], -4, 4)]);
check(['quick_gelu'], 'quickGelu', ([a]) => a.quickGelu(), [f64([9], -4, 4)]);
check(['pow_scalar'], 'pow scalar 3', ([a]) => a.pow(3), [f64([5])]);
check(['pow_scalar'], 'pow scalar 2 and 0.5', ([a]) => a.pow(2).add(a.pow(0.5)), [f64([5], 0.3, 2)]);

// ---- reductions ----------------------------------------------------------------------------------------------------
check(['sum'], 'sum all', ([a]) => a.sum(), [f64([3, 4])]);
check(['sum'], 'sum axes [0,2] keepdim', ([a]) => a.sum([0, 2], true), [f64([2, 3, 4])]);
check(['sum'], 'mean axis -1', ([a]) => a.mean(-1), [f64([3, 5])]);
check(['max'], 'max axis 1', ([a]) => a.max(1), [distinct([3, 4, 2])]);
check(['max'], 'max axis 0 keepdim', ([a]) => a.max(0, true), [distinct([5, 3])]);

// ---- matmul ---------------------------------------------------------------------------------------------------------
for (const [tA, tB] of [[false, false], [false, true], [true, false], [true, true]]) {
  const a = f64(tA ? [2, 4, 3] : [2, 3, 4]);
  const b = f64(tB ? [5, 4] : [4, 5]);
  check(['matmul'], `matmul transA=${tA} transB=${tB}, batch broadcast`, ([x, y]) => x.matmul(y, { transA: tA, transB: tB }), [a, b]);
}
check(['matmul'], 'matmul batch broadcast [2,1,3,4]x[3,4,2]', ([x, y]) => x.matmul(y), [f64([2, 1, 3, 4]), f64([3, 4, 2])]);
check(['matmul', 'add'], 'linear', ([x, w, b]) => E.linear(x, w, b), [f64([2, 3, 4]), f64([5, 4]), f64([5])]);
check(['matmul'], 'matmul [B,M,K] x [K,N] (batch folded into M in backward)', ([x, w]) => x.matmul(w), [f64([2, 3, 4]), f64([4, 5])]);
check(['matmul'], 'matmul [B,M,K] x [N,K]^T', ([x, w]) => x.matmul(w, { transB: true }), [f64([3, 2, 4]), f64([5, 4])]);
check(['permute'], 'unfoldPatches', ([x]) => E.unfoldPatches(x, 2), [f64([2, 3, 4, 6])]);

// ---- fused ------------------------------------------------------------------------------------------------------------
check(['softmax'], 'softmax last axis', ([a]) => a.softmax(-1), [f64([3, 5], -2, 2)]);
check(['softmax'], 'softmax axis 1 with float mask (grad to mask)', ([a, m]) => a.softmax(1, m), [f64([2, 3, 4], -2, 2), f64([3, 1], -1, 1)]);
check(['softmax'], 'softmax with boolean mask', ([a]) => a.softmax(-1, keepMask), [f64([3, 4], -2, 2)]);
check(['softmax'], 'scaledSoftmax with [B,1,1,N] mask', ([a, m]) => E.scaledSoftmax(a, 0.35, -1, m), [f64([2, 2, 3, 5], -2, 2), f64([2, 1, 1, 5], -1, 1)], { wrt: [0] });
check(['softmax'], 'scaledSoftmax axis 0 (grad to mask)', ([a, m]) => E.scaledSoftmax(a, 1.7, 0, m), [f64([4, 3], -2, 2), f64([4, 1], -1, 1)]);
check(['log_softmax'], 'logSoftmax', ([a]) => a.logSoftmax(-1), [f64([3, 5], -2, 2)]);
check(['log_softmax'], 'logSoftmax axis 0 with mask', ([a, m]) => a.logSoftmax(0, m), [f64([4, 3], -2, 2), f64([4, 3], -1, 1)]);
check(['layer_norm'], 'layerNorm', ([x, w, b]) => E.layerNorm(x, w, b, 1e-5), [f64([2, 3, 6], -2, 2), f64([6]), f64([6])]);
check(['layer_norm'], 'layerNorm without affine', ([x]) => E.layerNorm(x, null, null, 1e-3), [f64([4, 5], -2, 2)]);
check(['bias_gelu'], 'biasGelu (x and bias)', ([x, b]) => E.biasGelu(x, b), [f64([2, 3, 5], -3, 3), f64([5], -1, 1)]);
check(['bias_gelu'], 'linear with gelu (weight, bias)', ([x, w, b]) => E.linear(x, w, b, 'gelu'), [f64([2, 3, 4], -2, 2), f64([5, 4], -1, 1), f64([5], -1, 1)]);
check(['dropout'], 'dropout (fixed generator)', ([x]) => E.dropout(x, 0.3, { training: true, generator: new Generator(5) }), [f64([4, 6])]);
check(['cross_entropy'], 'crossEntropy mean with ignoreIndex', ([x]) => E.crossEntropy(x, labelsIgnore, { ignoreIndex: -100 }), [f64([4, 5], -2, 2)]);
check(['cross_entropy'], 'crossEntropy [B,N,C] none', ([x]) => E.crossEntropy(x, labels2d, { reduction: 'none' }), [f64([2, 3, 3], -2, 2)]);
check(['bce_with_logits'], 'bceWithLogits (logits and targets)', ([x, t]) => E.bceWithLogits(x, t, { reduction: 'sum' }), [f64([3, 4], -4, 4), f64([3, 4], 0, 1)]);

// ---- gathers ----------------------------------------------------------------------------------------------------------
check(['index_select'], 'indexSelect axis 1 with repeats', ([x]) => E.indexSelect(x, selIdx, 1), [f64([2, 4, 3])]);
check(['index_select'], 'embedding', ([w]) => E.embedding(w, embIds), [f64([4, 3])]);
check(['index_add'], 'indexAdd', ([g]) => E.indexAdd(g, addIdx, 0, 3), [f64([3, 2])]);
check(['gather'], 'gather axis 1', ([x]) => E.gather(x, gatherIdx, 1), [f64([2, 4])]);
check(['scatter_add'], 'scatterAdd axis 0', ([g]) => E.scatterAdd(g, scatterIdx, 0, [3, 2]), [f64([2, 2])]);

// ---- movement ---------------------------------------------------------------------------------------------------------
check(['permute'], 'permute', ([x]) => x.permute(2, 0, 1), [f64([2, 3, 4])]);
check(['permute'], 'transpose', ([x]) => x.transpose(0, -1), [f64([3, 2, 5])]);
check(['slice'], 'slice', ([x]) => x.slice(1, 1, -1), [f64([2, 5, 3])]);
check(['pad'], 'pad', ([x]) => E.pad(x, [[1, 2], [0, 1]], 0.5), [f64([2, 3])]);
check(['concat'], 'concat axis 1', ([a, b]) => E.concat([a, b, a], 1), [f64([2, 1, 3]), f64([2, 2, 3])]);
check(['concat'], 'stack axis 0', ([a, b]) => E.stack([a, b], 0), [f64([2, 3]), f64([2, 3])]);
check(['expand'], 'expand', ([x]) => x.expand([2, 3, 4]), [f64([3, 1])]);
check(['cast'], 'clone / cast', ([x]) => x.clone().cast('float64'), [f64([4])]);
check([], 'reshape / squeeze / unsqueeze / flatten', ([x]) => x.reshape([3, -1]).unsqueeze(0).flatten().squeeze().mul(x.reshape([6])), [f64([2, 3])]);

// ---- resizing ---------------------------------------------------------------------------------------------------------
check(['resize_bilinear'], 'resizeBilinear alignCorners up', ([x]) => E.resizeBilinear(x, 5, 7, true), [f64([2, 3, 4])]);
check(['resize_bilinear'], 'resizeBilinear half-pixel down', ([x]) => E.resizeBilinear(x, 2, 3, false), [f64([1, 5, 6])]);
check(['resize_bilinear_backward'], 'resize_bilinear_backward (its adjoint)', ([g]) => apply('resize_bilinear_backward', [g], { inH: 3, inW: 4, alignCorners: true })[0], [f64([2, 5, 6])]);

test('every op with a gradient rule is gradient-checked', () => {
  const withGrad = OP_NAMES.filter((op) => OPS[op].grad !== undefined);
  const missing = withGrad.filter((op) => !covered.has(op));
  assert.equal(missing, [], `ops with a gradient rule but no gradcheck: ${missing.join(', ')}`);
});

test.run();
