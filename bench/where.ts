// Can the synthetic ViLT learn WHERE an object is? (`npm run bench:where -- [--objects one|multi] [--init fresh|FILE]
// [--pos-std S] [--single-frac F] [--label cell|color] [--steps N] [--lr R] [--seed N]`). A controlled probe of the position grounding
// behind the text->image gate: freshly generated scenes (experiments/scenes.ts, rendered at 64 px as the corpus,
// through the 48 px pixelbert transform), the text "is the <colour> <shape>" naming one of the scene's objects, and a
// 9-way linear head on the pooled joint [CLS] trained to give that object's grid cell, with the whole backbone
// trained (AdamW, weight decay 0.01, constant rate, batch 32). --objects one: one-object scenes (no binding needed,
// only reading a position); multi: 2-5 objects (the named object must be found first). --pos-std rescales the patch
// position table to that standard deviation at the start (a fresh table is trunc-normal 0.02; a shipped one is
// scaled by S / 0.02); --single-frac mixes that share of one-object scenes into the training batches of a multi run
// (the held-out set stays multi); --label color asks the named object's colour instead (6-way, the control: no
// position needed). Prints held-out accuracy (256 scenes) every 50 steps.
// Does not: touch the shipped files, the corpus or any committed figure; it is a diagnostic (one seed, a few minutes).
// Invariants: deterministic for (seed, options) on one backend and thread count; the held-out scenes come from their
// own stream, drawn before any training scene.
import { crossEntropy, noGrad, scope, tensor } from '../engine/index.ts';
import { buildPretrainModel, loadPretrainModel, scalePositionTable } from '../experiments/pretrain.ts';
import { COLORS, SHAPES, randomScene, renderScene } from '../experiments/scenes.ts';
import { Linear } from '../models/nn/layers.ts';
import type { ViltConfig, ViltModel } from '../models/index.ts';
import { AdamW } from '../train/optim.ts';
import { Rng } from '../data/rng.ts';
import { pixelbertTransform, transformImage } from '../data/images.ts';
import { fileURLToPath } from 'node:url';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i];
  if (!k.startsWith('--') || process.argv[i + 1] === undefined) throw new Error(`bench:where: expected --option value pairs, got ${process.argv.slice(2).join(' ')}`);
  args.set(k.slice(2), process.argv[i + 1]);
}
const num = (k: string, d: number): number => {
  const v = args.has(k) ? Number(args.get(k)) : d;
  if (!Number.isFinite(v)) throw new Error(`bench:where: --${k} must be a number, got ${args.get(k)}`);
  return v;
};
const objects = args.get('objects') ?? 'multi';
if (objects !== 'one' && objects !== 'multi') throw new Error(`bench:where: --objects must be one or multi, got ${objects}`);
const init = args.get('init') ?? 'fresh';
const steps = num('steps', 400), lr = num('lr', 1e-3), seed = num('seed', 0), singleFrac = num('single-frac', 0);
const posStd = args.has('pos-std') ? num('pos-std', 0.02) : null;
const label = args.get('label') ?? 'cell';
if (label !== 'cell' && label !== 'color') throw new Error(`bench:where: --label must be cell or color, got ${label}`);
const classes = label === 'cell' ? 9 : COLORS.length;

const shipped = fileURLToPath(new URL('../pretrained/vilt-synth.safetensors', import.meta.url));
const base = loadPretrainModel(init === 'fresh' ? shipped : init); // the vocabulary and config (and weights unless fresh)
const bb = (init === 'fresh' ? buildPretrainModel(base.config.modelConfig as ViltConfig, seed + 1).bb : base.bb) as ViltModel;
if (bb.kind !== 'vilt') throw new Error(`bench:where: ${init} is not a ViLT pre-training checkpoint`);
if (posStd !== null) scalePositionTable(bb, posStd);
const S = base.imageSize, px = 3 * S * S;
const t = pixelbertTransform(S, undefined, base.patch);
const head = new Linear((base.config.modelConfig as ViltConfig).hidden, classes);

interface Draw { imgs: Float32Array; ids: Int32Array; mask: Float32Array; L: number; labels: number[]; n: number }
async function draw(rng: Rng, n: number, single: number): Promise<Draw> {
  const imgs = new Float32Array(n * px), rows: number[][] = [], labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const one = objects === 'one' || rng.next() < single;
    const sc = one ? randomScene(rng, 1, 1) : randomScene(rng, 2, 5);
    const o = sc.objects[rng.int(sc.objects.length)];
    imgs.set((await transformImage(await renderScene(sc, 64), t)).data, i * px);
    rows.push(base.tok.encode(`${base.textPrefix}is the ${COLORS[o.color]} ${SHAPES[o.shape]}`).ids);
    labels.push(label === 'cell' ? o.cell : o.color);
  }
  const L = Math.max(...rows.map((r) => r.length));
  const ids = new Int32Array(n * L).fill(base.tok.padId), mask = new Float32Array(n * L);
  rows.forEach((r, i) => r.forEach((v, j) => { ids[i * L + j] = v; mask[i * L + j] = 1; }));
  return { imgs, ids, mask, L, labels, n };
}
const logits = (b: Draw) => head.forward(bb.infer({
  textIds: tensor(b.ids, [b.n, b.L], { dtype: 'int32' }), textMasks: tensor(b.mask, [b.n, b.L]), image: tensor(b.imgs, [b.n, 3, S, S]),
}).clsFeats);

const heldOut = await draw(new Rng(seed * 7919 + 1), 256, 0);
const trainRng = new Rng(seed * 7919 + 2);
const opt = new AdamW([...bb.parameters().filter((p) => p.requiresGrad), ...head.parameters()], { lr, weightDecay: 0.01 });
console.log(`bench:where: label ${label}, objects ${objects}, init ${init}, pos-std ${posStd ?? 'as initialised'}, single-frac ${singleFrac}, ${steps} steps at lr ${lr}, seed ${seed}`);
bb.train(true);
for (let s = 1; s <= steps; s++) {
  const b = await draw(trainRng, 32, singleFrac);
  const loss = scope(() => {
    const l = crossEntropy(logits(b), tensor(Int32Array.from(b.labels), [b.n], { dtype: 'int32' }));
    l.backward();
    return l.item();
  });
  opt.step();
  opt.zeroGrad();
  if (s % 50 === 0 || s === steps) {
    bb.train(false);
    const lg = noGrad(() => scope(() => logits(heldOut).toArray()));
    bb.train(true);
    let hit = 0;
    heldOut.labels.forEach((y, i) => { let best = 0; for (let k = 1; k < classes; k++) if (lg[i * classes + k] > lg[i * classes + best]) best = k; if (best === y) hit++; });
    console.log(`step ${s}  train loss ${loss.toFixed(3)}  held-out ${label} accuracy ${(hit / heldOut.n).toFixed(3)} (chance ${(1 / classes).toFixed(3)})`);
  }
}
