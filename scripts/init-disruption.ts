// How far each method moves a frozen pre-trained backbone BEFORE any training (the deep-prompt investigation of
// issue 8): for every method, build the model on the backbone (createModel + importPretrained, exactly as runTrain),
// run one batch of synthetic VQA questions in eval mode and compare with classifier_only (the frozen backbone itself,
// token4classifier in place): relative L2 change of the final text/image features and of cls_feats (what the VQA head
// reads), and the cosine between the two cls_feats. A method whose injected modules start at identity (LoRA B = 0,
// adapters with a zero up-projection) shows 0; deep prompt's fresh Uniform(+-v) prompts, normalised to full scale by
// LN1 like every other row (apt-spec 3.2), are extra keys/values at every layer from step 0.
// usage: node --import tsx scripts/init-disruption.ts PRETRAIN.safetensors DATA_DIR [--tokens N] [--batch N]
// Does not: train, or write anything.
import { noGrad, scope, type Tensor } from '../engine/index.ts';
import { createModel, listMethods } from '../models/index.ts';
import { SYNTH_METHOD_OPTIONS } from '../models/pretrain.ts';
import { importPretrained } from '../train/checkpoint.ts';
import { pretrainConfigOf, transformFor, type Backbone } from '../train/run.ts';
import { TaskDataset, loadVqaVocab } from '../data/tasks.ts';
import { taskLoader } from '../data/task-batches.ts';
import { BertTokenizer } from '../data/tokenizers/index.ts';
import { toModelBatch } from '../train/batch.ts';
import type { MethodName } from '../models/petl/index.ts';

const [file, data] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const flag = (n: string, d: number) => { const i = process.argv.indexOf(`--${n}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
if (!file || !data) { console.error('usage: node --import tsx scripts/init-disruption.ts PRETRAIN.safetensors DATA_DIR [--tokens N] [--batch N]'); process.exit(2); }
const pre = pretrainConfigOf(file);
if (!pre) throw new Error(`${file}: not an aptune pretrain checkpoint`);
const backbone: Backbone = pre.backbone;
const tok = new BertTokenizer(new Map(pre.vocab.map((t, i) => [t, i] as [string, number])), {}, file);
const numAnswers = (await loadVqaVocab(data, backbone)).numClasses;
const ds = await TaskDataset.open(data, backbone, 'vqa', 'val', { tables: ['vqav2_rest_val'] });
const imageSize = backbone === 'meter' ? (pre.modelConfig as { clip: { imageSize: number } }).clip.imageSize : 48;
let batch: Awaited<ReturnType<typeof toModelBatch>> | null = null;
for await (const tb of taskLoader(ds, { model: backbone, tokenizer: tok, transform: transformFor(backbone, pre.modelConfig, imageSize), maxLength: pre.modelConfig.maxTextLen, numClasses: numAnswers, seed: 0, concurrency: 2, batchSize: flag('batch', 64), shuffle: false, drawFalseText: 0, drawFalseImage: 0, augment: null }).epoch(0)) {
  batch = toModelBatch(tb, 'vqa');
  break;
}
await ds.close();
if (!batch) throw new Error('no batch');
const feats = (method: string) => {
  const opts = { ...(SYNTH_METHOD_OPTIONS[method as MethodName] ?? {}), ...(method === 'deep_prompt' || method === 'apt' ? { tokens: flag('tokens', (SYNTH_METHOD_OPTIONS[method as MethodName] as { tokens?: number }).tokens ?? 16) } : {}) };
  const m = createModel({ backbone, config: pre.modelConfig, task: 'vqa', numAnswers, method, methodOptions: opts, seed: 0 });
  importPretrained(file, m);
  m.eval();
  return noGrad(() => scope(() => {
    const o = m.backbone.infer({ textIds: batch!.textIds, textMasks: batch!.textMasks, image: batch!.image, imageTypeIdx: 1 });
    const host = (t: Tensor) => Float64Array.from(t.toArray());
    const nText = batch!.textIds.shape[1];
    // real tokens only (prompt rows, if a method appends any, are not compared)
    const tf = o.textFeats.slice(1, o.textFeats.shape[1] - nText, o.textFeats.shape[1]);
    return { text: host(tf), image: host(o.imageFeats.slice(1, 0, Math.min(o.imageFeats.shape[1], 10))), cls: host(o.clsFeats) };
  }));
};
const rel = (a: Float64Array, b: Float64Array) => { let d = 0, n = 0; for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] ** 2; } return Math.sqrt(d / n); };
const cos = (a: Float64Array, b: Float64Array) => { let ab = 0, aa = 0, bb = 0; for (let i = 0; i < a.length; i++) { ab += a[i] * b[i]; aa += a[i] ** 2; bb += b[i] ** 2; } return ab / Math.sqrt(aa * bb); };
const base = feats('classifier_only');
console.log(`backbone ${file}; ${batch.textIds.shape[0]} questions of vqav2_rest_val; change at init relative to the frozen backbone (classifier_only):`);
console.log('method            text feats   image feats   cls_feats   cos(cls)');
for (const m of listMethods().map((x) => x.name).filter((n) => n !== 'classifier_only' && n !== 'full' && n !== 'shallow_prompt')) {
  const f = feats(m);
  console.log(`${m.padEnd(16)}  ${rel(f.text, base.text).toFixed(4).padStart(10)}   ${rel(f.image, base.image).toFixed(4).padStart(11)}   ${rel(f.cls, base.cls).toFixed(4).padStart(9)}   ${cos(f.cls, base.cls).toFixed(4).padStart(8)}`);
}
