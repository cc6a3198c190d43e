// Pre-training (experiments/pretrain.ts, models/pretrain.ts): the caption truth check against the generator's own
// scenes, each loss against a hand value or an independent host computation, masking (content words only, the
// same rule for matched and mismatched rows, MLM labels only on true rows), a few steps reducing the loss on a
// fixed batch, the flattened image projection, and the CLI writing a checkpoint that `aptune train --pretrained`
// loads with the same vocabulary.
// Everything runs on a tiny synthetic set and the tiny preset.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { concat, noGrad, randn, scope, tensor, Generator } from '../../engine/index.ts';
import { encodeSingle, imageTokens, itcEmbed, itcProject, textTokens } from '../../models/pretrain.ts';
import { ceLoss } from '../../models/heads.ts';
import { Linear } from '../../models/nn/layers.ts';
import type { ViltModel } from '../../models/vilt.ts';
import { generateSynthetic } from '../../experiments/synthetic.ts';
import {
  buildBatch, buildPretrainModel, captionHolds, captionKind, truthLogMask, contrastiveLoss, loadCaptionCorpus, maskPositions, maskSeed, mlmLoss,
  loadPretrainModel, parseCaption, pretrainLosses, pretrainModelConfig, sceneFromJson, centerNormalize, CONTENT_WORDS, type CaptionCorpus,
  appendSingleObjectScenes, runPretrain, evaluateGates, gateReport, SYNTH_RECIPE,
} from '../../experiments/pretrain.ts';
import { BertTokenizer, buildWordPieceVocab, VILT_TEXT_PREFIX } from '../../data/tokenizers/index.ts';
import { dataTexts, runTrain } from '../../train/run.ts';
import { main } from '../../train/cli.ts';
import { loadCheckpoint, saveCheckpoint } from '../../train/checkpoint.ts';
import { readRun } from '../../train/report.ts';
import { AdamW } from '../../train/optim.ts';

const dir = mkdtempSync(join(tmpdir(), 'aptune-pretrain-'));
let corpus: CaptionCorpus;
let tok: BertTokenizer;

test.before(async () => {
  await generateSynthetic({ out: dir, preset: 'tiny', imageSize: 32, seed: 3 });
  tok = new BertTokenizer(buildWordPieceVocab(await dataTexts(dir)));
  corpus = await loadCaptionCorpus(join(dir, 'synth_caption_train.arrow'), { tokenizer: tok, imageSize: 32, patch: 8, prefix: VILT_TEXT_PREFIX, maxLength: 40 });
});

const logSoftmax = (row: number[]) => { const m = Math.max(...row); const z = Math.log(row.reduce((s, x) => s + Math.exp(x - m), 0)) + m; return row.map((x) => x - z); };

test('caption parser: every corpus caption holds on its scene, every hard negative is false', () => {
  let caps = 0, negs = 0;
  corpus.scenes.forEach((sc, i) => {
    for (const c of corpus.captions[i]) { assert.is(captionHolds(sc, c), true, c); caps++; }
    for (const n of corpus.negatives[i]) if (n) { assert.is(captionHolds(sc, n), false, n); negs++; }
  });
  assert.ok(caps >= 50 && negs >= 30, `${caps} captions, ${negs} negatives`);
  const scene = sceneFromJson(JSON.stringify([{ color: 'red', shape: 'circle', size: 'small', row: 0, col: 0 }, { color: 'blue', shape: 'square', size: 'large', row: 2, col: 2 }]));
  assert.is(captionHolds(scene, 'a red circle left of a blue square and two shapes in total'), true);
  assert.is(captionHolds(scene, 'a red circle right of a blue square'), false);
  assert.is(captionHolds(scene, 'a large blue square at the bottom right and one circle'), true);
  assert.is(captionHolds(scene, 'a small blue square'), false);
  assert.is(parseCaption('a red circle beside a blue square'), null);
  assert.is(captionKind('a large green diamond and a small purple circle'), 'attributes');
  assert.is(captionKind('one circle, one diamond and two shapes in total'), 'count');
  assert.is(captionKind('a purple circle above a green diamond'), 'relation');
  assert.is(captionKind('a green diamond at the bottom center'), 'position');
  assert.is(captionKind('a red circle beside a blue square'), null);
});

test('contrastive loss: hand value, symmetric, finite at the clamp', () => {
  const s = 3;
  const eye = tensor([1, 0, 0, 1], [2, 2]);
  const l = contrastiveLoss(eye, eye, s).item();
  assert.ok(Math.abs(l - Math.log(1 + Math.exp(-s))) < 1e-5, `${l}`);
  const t = tensor([0.6, 0.8, 1, 0, 0, 1], [3, 2]);
  const v = tensor([0, 1, 0.8, 0.6, 1, 0], [3, 2]);
  const a = contrastiveLoss(t, v, 5).item(), b = contrastiveLoss(v, t, 5).item();
  assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
  // independent host value: mean of row-wise and column-wise CE of 5 * T V^T with diagonal targets
  const T = [[0.6, 0.8], [1, 0], [0, 1]], V = [[0, 1], [0.8, 0.6], [1, 0]];
  const S = T.map((x) => V.map((y) => 5 * (x[0] * y[0] + x[1] * y[1])));
  let ce = 0;
  for (let i = 0; i < 3; i++) ce -= logSoftmax(S[i])[i] + logSoftmax(S.map((r) => r[i]))[i];
  assert.ok(Math.abs(a - ce / 6) < 1e-5, `${a} vs ${ce / 6}`);
  assert.ok(Number.isFinite(contrastiveLoss(t, v, 100).item()));
  // multi-positive: caption 0 is also true of image 2 -> text side -log(p00 + p02), image side image 2's row -log(q22 + q20)
  const mask = [0, -1e4, 0, -1e4, 0, -1e4, -1e4, -1e4, 0];
  const m = contrastiveLoss(t, v, 5, tensor(mask, [3, 3])).item();
  const P = S.map((r) => logSoftmax(r).map(Math.exp));
  const Q = [0, 1, 2].map((i) => logSoftmax(S.map((r) => r[i])).map(Math.exp)); // Q[i][t]: image i over texts
  const want = (-Math.log(P[0][0] + P[0][2]) - Math.log(P[1][1]) - Math.log(P[2][2])
    - Math.log(Q[0][0]) - Math.log(Q[1][1]) - Math.log(Q[2][2] + Q[2][0])) / 6;
  assert.ok(Math.abs(m - want) < 1e-5, `${m} vs ${want}`);
  // a diagonal-only mask is the plain loss
  assert.ok(Math.abs(contrastiveLoss(t, v, 5, tensor([0, -1e4, -1e4, -1e4, 0, -1e4, -1e4, -1e4, 0], [3, 3])).item() - a) < 1e-5);
  // evaluation centring: the set's mean is removed before normalising
  const rows = [Float32Array.from([1, 2]), Float32Array.from([3, 2])];
  centerNormalize(rows);
  assert.equal([...rows[0], ...rows[1]], [-1, 0, 1, 0]);
  // partial centring (--itc-center): half the mean [2, 2] removed -> [0, 1] and [2, 1], normalised
  const half = [Float32Array.from([1, 2]), Float32Array.from([3, 2])];
  centerNormalize(half, 0.5);
  const r5 = Math.sqrt(5);
  [0, 1, 2 / r5, 1 / r5].forEach((w, k) => assert.ok(Math.abs([...half[0], ...half[1]][k] - w) < 1e-6, `centerNormalize(0.5)[${k}]`));
});

test('itcEmbed: removes `center` times the batch mean before normalising (0 none, 1 centred); refuses a fraction outside [0, 1]', () => {
  const proj = new Linear(3, 2);
  const feats = randn([4, 2, 3], { generator: new Generator(7) });
  const z = itcProject(proj, feats).toArray();
  for (const c of [0, 0.5, 1]) {
    const got = itcEmbed(proj, feats, null, c).toArray();
    const mean = [0, 1].map((k) => [0, 1, 2, 3].reduce((s, b) => s + z[b * 2 + k], 0) / 4);
    for (let b = 0; b < 4; b++) {
      const r = [0, 1].map((k) => z[b * 2 + k] - c * mean[k]);
      const n = Math.hypot(...r);
      r.forEach((v, k) => assert.ok(Math.abs(got[b * 2 + k] - v / n) < 1e-5, `center ${c} row ${b}`));
    }
  }
  assert.throws(() => itcEmbed(proj, feats, null, 2), /center must be in \[0, 1\]/);
});

test("itcProject 'flat': the projection of all tokens flattened (a hand product); refuses padding and a projection of another width", () => {
  const proj = new Linear(6, 2); // 3 tokens x width 2
  const feats = randn([2, 3, 2], { generator: new Generator(9) });
  const got = itcProject(proj, feats, null, 'flat').toArray();
  const w = proj.weight.toArray(), bias = proj.param('bias').toArray(), f = feats.toArray();
  for (let b = 0; b < 2; b++) for (let o = 0; o < 2; o++) {
    let v = bias[o];
    for (let k = 0; k < 6; k++) v += w[o * 6 + k] * f[b * 6 + k];
    assert.ok(Math.abs(got[b * 2 + o] - v) < 1e-5, `row ${b} out ${o}`);
  }
  assert.throws(() => itcProject(proj, feats, [[1, 1, 1], [1, 1, 0]], 'flat'), /every token valid .*row 1 has padding/);
  assert.throws(() => itcProject(new Linear(4, 2), feats, null, 'flat'), /flat pooling of \[2, 3, 2\] needs a projection from 6, this one takes 4 \(2 tokens\)/);
});

test("itcPositives 'true': the batch's log-mask marks exactly the images each caption is true of (own image always)", () => {
  const idx = corpus.images.map((_, i) => i);
  const B = idx.length;
  let extra = 0;
  for (let step = 1; step <= 40; step++) {
    const b = buildBatch(corpus, idx, { maskProb: 0, maskId: tok.maskId!, padId: tok.padId, seed: 1, step, itcPositives: 'true' });
    if (step === 1) assert.is(buildBatch(corpus, idx, { maskProb: 0, maskId: tok.maskId!, padId: tok.padId, seed: 1, step }).itcLogMask, undefined);
    assert.equal(b.itcLogMask!.shape, [B, B]);
    const m = b.itcLogMask!.toArray(), ids = b.itcIds.toList() as number[][];
    for (let t = 0; t < B; t++) {
      // the caption of image t the batch drew: the one whose ids start the row (the rest is padding)
      const k = corpus.capEnc[idx[t]].findIndex((e) => e.ids.every((x, j) => ids[t][j] === x) && ids[t].slice(e.ids.length).every((x) => x === tok.padId));
      assert.ok(k >= 0);
      const text = corpus.captions[idx[t]][k];
      for (let i = 0; i < B; i++) {
        const pos = i === t || captionHolds(corpus.scenes[idx[i]], text) === true;
        assert.is(m[t * B + i], pos ? 0 : -1e4, `caption ${t} '${text}' / image ${i}`);
        if (pos && i !== t) extra++;
      }
    }
  }
  assert.ok(extra > 0, 'over 40 batches some caption is true of another batch image');
  assert.equal(truthLogMask(['a red circle'], [[]] as never), Float32Array.from([0]));
});

test('MLM loss: mean CE over labelled positions only; null when none is labelled', () => {
  const logits = tensor([1, 2, 3, 0, 0, 0, 3, 1, -1, 5, 5, 5], [2, 2, 3]);
  const l = mlmLoss(logits, tensor(new Int32Array([2, -100, 0, -100]), [2, 2], { dtype: 'int32' }))!.item();
  const want = -(logSoftmax([1, 2, 3])[2] + logSoftmax([3, 1, -1])[0]) / 2;
  assert.ok(Math.abs(l - want) < 1e-5, `${l} vs ${want}`);
  assert.is(mlmLoss(logits, tensor(new Int32Array(4).fill(-100), [2, 2], { dtype: 'int32' })), null);
});

test('masking: content words only, the same rule for matched and mismatched rows, MLM labels only on true rows', () => {
  const specials = new Set([tok.startId, tok.endId, tok.padId]);
  const prefixLen = tok.tokenize(VILT_TEXT_PREFIX).length;
  const idx = Array.from({ length: corpus.images.length }, (_, i) => i);
  let maskedPos = 0, maskedNeg = 0, contentPos = 0, contentNeg = 0;
  for (const negFraction of [0, 0.5, 1]) {
    for (let step = 1; step <= 4; step++) {
      scope(() => {
        const b = buildBatch(corpus, idx, { maskProb: 0.5, maskId: tok.maskId!, padId: tok.padId, seed: 7, step, negFraction, hardFraction: 0.5 });
        const mlm = b.mlmLabels.toArray(), L = b.mlmLabels.shape[1];
        b.host.unmaskedIds.forEach((ids, r) => {
          const pos = b.host.masked[r];
          // the row's mask is the one rule of (text, seed, step, row): recomputed without the label
          const enc = { ids, content: Uint8Array.from(ids.map((id, j) => (j > prefixLen && !specials.has(id) && CONTENT_WORDS.has(tok.idToToken(id)!) ? 1 : 0))) };
          assert.equal(pos, maskPositions(enc, 0.5, maskSeed(7, step, r)));
          for (const p of pos) {
            assert.not.ok(specials.has(ids[p]), 'a special token was masked');
            assert.ok(p > prefixLen, 'a prefix token was masked');
            assert.ok(CONTENT_WORDS.has(tok.idToToken(ids[p])!));
            assert.is(b.host.itmIds[r][p], tok.maskId);
          }
          const nContent = enc.content.reduce((s, x) => s + x, 0);
          if (b.host.labels[r] === 1) { maskedPos += pos.length; contentPos += nContent; } else { maskedNeg += pos.length; contentNeg += nContent; }
          for (let j = 0; j < L; j++) {
            const want = b.host.labels[r] === 1 && pos.includes(j) ? ids[j] : -100;
            assert.is(mlm[r * L + j], want);
          }
        });
        if (negFraction === 1) assert.ok(b.host.kinds.every((k) => k !== 'pos'));
      });
    }
  }
  const rp = maskedPos / contentPos, rn = maskedNeg / contentNeg;
  assert.ok(contentNeg > 100 && contentPos > 100);
  assert.ok(Math.abs(rp - 0.5) < 0.1 && Math.abs(rn - 0.5) < 0.1, `mask rate matched ${rp}, mismatched ${rn}`);
});

test("mlmPass 'separate': ITM sees the clean texts, MLM masks each image's own caption and labels every masked position", () => {
  const idx = Array.from({ length: corpus.images.length }, (_, i) => i);
  scope(() => {
    const b = buildBatch(corpus, idx, { maskProb: 0.5, maskId: tok.maskId!, padId: tok.padId, seed: 7, step: 2, hardFraction: 0.5, mlmPass: 'separate' });
    assert.ok(b.mlmIds && b.mlmValid);
    assert.equal(b.host.itmIds, b.host.unmaskedIds); // no [MASK] reaches the ITM pass
    const itm = b.itmIds.toArray(), Li = b.itmIds.shape[1];
    for (let i = 0; i < itm.length; i++) assert.is.not(itm[i], tok.maskId);
    const itc = b.itcIds.toArray(), Lc = b.itcIds.shape[1];
    const ids = b.mlmIds!.toArray(), y = b.mlmLabels.toArray(), Lm = b.mlmIds!.shape[1];
    assert.equal(b.mlmLabels.shape, b.mlmIds!.shape);
    assert.is(Lm, Lc);
    let nMasked = 0;
    for (let r = 0; r < idx.length; r++) {
      for (let j = 0; j < Lm; j++) {
        const orig = itc[r * Lc + j], masked = b.host.masked[r].includes(j);
        assert.is(ids[r * Lm + j], masked ? tok.maskId : orig);
        assert.is(y[r * Lm + j], masked ? orig : -100); // negatives' rows too: these texts are all true of their image
        if (masked) nMasked++;
      }
    }
    assert.ok(nMasked > 10, `masked ${nMasked}`);
    assert.ok(Li > 0);
  });
});

test('gate re-ranking: top 1 or an overwhelming cosine weight leave contrastive R@1; weight 0 over every candidate is ranking by the ITM margin', () => {
  const cfg = pretrainModelConfig({ preset: 'tiny' }, tok, 40);
  const { bb: bbAny, heads } = buildPretrainModel(cfg, 2);
  const bb = bbAny as ViltModel;
  const c: CaptionCorpus = { ...corpus, images: corpus.images.slice(0, 6), scenes: corpus.scenes.slice(0, 6), captions: corpus.captions.slice(0, 6), negatives: corpus.negatives.slice(0, 6), capEnc: corpus.capEnc.slice(0, 6), negEnc: corpus.negEnc.slice(0, 6) };
  const o = { padId: tok.padId, batchSize: 8, seed: 0 };
  const nc = c.captions.flat().length;
  const one = evaluateGates(bb, heads, c, { ...o, rerank: { k: 1, weight: 10 } });
  assert.equal([one.r1T2IRerank, one.r1I2TRerank], [one.r1T2I, one.r1I2T]);
  const heavy = evaluateGates(bb, heads, c, { ...o, rerank: { k: nc, weight: 1e9 } });
  assert.equal([heavy.r1T2IRerank, heavy.r1I2TRerank], [heavy.r1T2I, heavy.r1I2T]);
  const itmOnly = evaluateGates(bb, heads, c, { ...o, rerank: { k: nc, weight: 0 } });
  // independent: each caption's image of the largest ITM margin, right when the caption is true of it
  const [H, W] = [c.height, c.width];
  let hits = 0;
  noGrad(() => c.captions.forEach((caps, owner) => caps.forEach((text, k) => scope(() => {
    const ids = c.capEnc[owner][k].ids, n = c.images.length;
    const img = new Float32Array(n * 3 * H * W);
    c.images.forEach((im, j) => img.set(im, j * 3 * H * W));
    const it = imageTokens(bb, tensor(img, [n, 3, H, W]));
    const tt = textTokens(bb, tensor(Int32Array.from(Array.from({ length: n }, () => ids).flat()), [n, ids.length], { dtype: 'int32' }));
    const lg = heads.itm.forward(bb.forwardTokens({ text: tt, image: it.x, textMask: Array.from({ length: n }, () => ids.map(() => 1)), imageMask: it.mask }).clsFeats).toArray();
    let best = 0;
    for (let j = 1; j < n; j++) if (lg[2 * j + 1] - lg[2 * j] > lg[2 * best + 1] - lg[2 * best]) best = j;
    if (best === owner || captionHolds(c.scenes[best], text) === true) hits++;
  }))));
  assert.ok(Math.abs(itmOnly.r1T2IRerank! - hits / nc) < 1e-9, `re-ranked ${itmOnly.r1T2IRerank} vs independent ${hits / nc}`);
  assert.is(gateReport(heavy).line.includes('(re-ranked)'), true);
});

test('ITM and MLM losses of a step equal an independent host computation; a few steps reduce the total', () => {
  const cfg = pretrainModelConfig({ preset: 'tiny' }, tok, 40);
  const { bb: bbAny, heads } = buildPretrainModel(cfg, 1);
  const bb = bbAny as ViltModel;
  const idx = Array.from({ length: 8 }, (_, i) => i);
  const b = buildBatch(corpus, idx, { maskProb: 0.4, maskId: tok.maskId!, padId: tok.padId, seed: 1, step: 1 });
  noGrad(() => {
    const l = pretrainLosses(bb, heads, b);
    const lg = l.itmLogits.toArray(), lab = b.host.labels;
    const itm = -lab.reduce((s, y, r) => s + logSoftmax([lg[2 * r], lg[2 * r + 1]])[y], 0) / lab.length;
    assert.ok(Math.abs(l.itm.item() - itm) < 1e-5, `${l.itm.item()} vs ${itm}`);
    const [B, L, V] = l.mlmLogits.shape, ml = l.mlmLogits.toArray(), y = b.mlmLabels.toArray();
    let sum = 0, n = 0;
    for (let i = 0; i < B * L; i++) if (y[i] !== -100) { sum -= logSoftmax(Array.from(ml.subarray(i * V, (i + 1) * V)))[y[i]]; n++; }
    assert.ok(n > 0 && l.mlm !== null && Math.abs(l.mlm.item() - sum / n) < 1e-4, `${l.mlm?.item()} vs ${sum / n}`);
    assert.ok(Number.isFinite(l.itc.item()));
  });
  const opt = new AdamW(bb.parameters(), { lr: 2e-3, betas: [0.9, 0.98] });
  const losses: number[] = [];
  for (let s = 0; s < 8; s++) {
    losses.push(scope(() => {
      const l = pretrainLosses(bb, heads, b);
      const v = l.total.item();
      l.total.backward();
      opt.step();
      opt.zeroGrad();
      return v;
    }));
  }
  assert.ok(losses[7] < losses[0] - 0.3, `losses ${losses.map((x) => x.toFixed(3)).join(' ')}`);
});

test('contrastive embeddings read token 0, the position the ITM pooler reads (mean pooling left [CLS] untrained)', () => {
  const cfg = pretrainModelConfig({ preset: 'tiny' }, tok, 40);
  const { bb: bbAny, heads } = buildPretrainModel(cfg, 1);
  const bb = bbAny as ViltModel;
  assert.is(heads.pool, 'cls');
  const D = cfg.hidden, B = 3, N = 5;
  noGrad(() => {
    const f = randn([B, N, D], { generator: new Generator(4) });
    const valid = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]];
    const a = itcProject(heads.textProj, f, valid, heads.pool).toArray();
    // other positions changed: same embedding; token 0 changed: a different one
    const same = itcProject(heads.textProj, concat([f.slice(1, 0, 1), randn([B, N - 1, D], { generator: new Generator(5) })], 1), valid, heads.pool).toArray();
    assert.ok(a.every((x, i) => Math.abs(x - same[i]) < 1e-6), 'the cls embedding depends on positions other than 0');
    const at = (pos: number) => tensor(Float32Array.from({ length: B * N * D }, (_, i) => (Math.floor(i / D) % N === pos ? 1 : 0)), [B, N, D]);
    const moved = itcProject(heads.textProj, f.add(at(0)), valid, heads.pool).toArray();
    assert.ok(a.some((x, i) => Math.abs(x - moved[i]) > 1e-3), 'the cls embedding ignores token 0');
    // 'mean' (the alternative) reads every valid position and no padded one: position 4 is valid in row 0 only
    const P = heads.textProj.outFeatures;
    const m = itcProject(heads.textProj, f, valid, 'mean').toArray(), m2 = itcProject(heads.textProj, f.add(at(4)), valid, 'mean').toArray();
    assert.ok(m.slice(0, P).some((x, i) => Math.abs(x - m2[i]) > 1e-4), 'mean ignores a valid position');
    assert.ok(m.slice(P).every((x, i) => Math.abs(x - m2[P + i]) < 1e-6), 'mean reads a padded position');
  });
  // the contrastive gradient reaches the text [CLS] of the single-modality pass, and the joint pass's token 0
  // (what the pooler and the ITM head read) gets trained by it
  const b = buildBatch(corpus, [0, 1, 2, 3], { maskProb: 0, maskId: tok.maskId!, padId: tok.padId, seed: 2, step: 1 });
  scope(() => {
    const t = textTokens(bb, b.itcIds).detach().requiresGrad_();
    const img = imageTokens(bb, b.image);
    const tf = encodeSingle(bb, t, b.itcValid), vf = encodeSingle(bb, img.x, img.mask);
    const l = contrastiveLoss(itcEmbed(heads.textProj, tf, b.itcValid, 1, heads.pool), itcEmbed(heads.imageProj, vf, img.mask, 1, heads.pool), 10);
    l.backward();
    const gr = t.grad!.toArray(), L = t.shape[1];
    let g0 = 0;
    for (let r = 0; r < 4; r++) for (let k = 0; k < D; k++) g0 += gr[(r * L) * D + k] ** 2;
    assert.ok(g0 > 0, 'no contrastive gradient at the text [CLS]');
  });
});

test('ITM alone overfits a fixed batch of 16 pairs (labels reach the loss, the pooled feature separates)', () => {
  const cfg = pretrainModelConfig({ preset: 'tiny' }, tok, 40);
  const { bb: bbAny, heads } = buildPretrainModel(cfg, 3);
  const bb = bbAny as ViltModel;
  const idx = Array.from({ length: 16 }, (_, i) => i % corpus.images.length);
  const b = buildBatch(corpus, idx, { maskProb: 0.25, maskId: tok.maskId!, padId: tok.padId, seed: 4, step: 1, hardFraction: 0.5 });
  const labels = b.host.labels;
  assert.ok(labels.some((y) => y === 0) && labels.some((y) => y === 1), labels.join(''));
  const opt = new AdamW(bb.parameters(), { lr: 3e-3, betas: [0.9, 0.98] });
  const run = (train: boolean) => scope(() => {
    const img = imageTokens(bb, b.image);
    const out = bb.forwardTokens({ text: textTokens(bb, b.itmIds), image: img.x, textMask: b.itmValid, imageMask: img.mask });
    const lg = heads.itm.forward(out.clsFeats);
    const loss = ceLoss(lg, b.itmLabels);
    const v = { loss: loss.item(), logits: Array.from(lg.toArray()) };
    if (train) { loss.backward(); opt.step(); opt.zeroGrad(); }
    return v;
  });
  const first = run(true).loss;
  for (let s = 0; s < 40; s++) run(true);
  const last = run(false);
  const pred = labels.map((_, r) => (last.logits[2 * r + 1] > last.logits[2 * r] ? 1 : 0));
  assert.ok(first > 0.6 && last.loss < 0.1, `ITM loss ${first.toFixed(3)} -> ${last.loss.toFixed(3)}`);
  assert.equal(pred, labels);
});

test('one-object scenes appended to the corpus: captioned and verified as the corpus, a function of the seed', async () => {
  const opts = { tokenizer: tok, imageSize: 32, patch: 8, prefix: VILT_TEXT_PREFIX, maxLength: 40 };
  const load = () => loadCaptionCorpus(join(dir, 'synth_caption_train.arrow'), opts);
  const [a, b, c] = [await load(), await load(), await load()];
  const n0 = a.images.length;
  await appendSingleObjectScenes(a, 12, 7, 32, opts);
  await appendSingleObjectScenes(b, 12, 7, 32, opts);
  await appendSingleObjectScenes(c, 12, 8, 32, opts);
  assert.is(a.images.length, n0 + 12);
  for (const k of ['scenes', 'captions', 'negatives', 'capEnc', 'negEnc'] as const) assert.is(a[k].length, n0 + 12, k);
  let negs = 0;
  for (let i = n0; i < a.images.length; i++) {
    assert.is(a.scenes[i].objects.length, 1);
    assert.is(a.images[i].length, 3 * a.height * a.width);
    for (const cap of a.captions[i]) assert.is(captionHolds(a.scenes[i], cap), true, cap);
    for (const neg of a.negatives[i]) if (neg) { assert.is(captionHolds(a.scenes[i], neg), false, neg); negs++; }
    assert.equal(a.capEnc[i].map((e) => e.ids), a.captions[i].map((t) => tok.encode(VILT_TEXT_PREFIX + t, { maxLength: 40, truncation: true }).ids));
  }
  assert.ok(negs > 0, 'verified negatives are drawn for them too');
  assert.equal(a.captions, b.captions);
  assert.ok(a.images.every((im, i) => im.every((v, k) => v === b.images[i][k])), 'the same seed renders the same scenes');
  assert.not.equal(a.captions.slice(n0), c.captions.slice(n0), 'another seed draws other scenes');
});

test('CLI: pretrain --pos-init-std scales the patch position table at the start (default the recipe\'s std 1), --single-objects grows the corpus; both recorded', async () => {
  const rms = (file: string, key = 'transformer.pos_embed') => { const t = loadCheckpoint(file).tensors.get(key)!; const v = t.data as Float32Array; return Math.sqrt(v.reduce((s, x) => s + x * x, 0) / v.length); };
  const run = async (name: string, extra: string[]) => {
    const out = join(dir, name, 'p.safetensors');
    assert.is(await main(['pretrain', '--data', dir, '--out', out, '--preset', 'tiny', '--steps', '1', '--batch-size', '4', '--lr', '1e-9', '--eval-every', '1', '--seed', '2', ...extra]), 0);
    return out;
  };
  const plain = await run('pos-plain', ['--pos-init-std', '0.02']), scaled = await run('pos-scaled', ['--single-objects', '5']);
  assert.ok(rms(plain) > 0.01 && rms(plain) < 0.03, `timm's table RMS ${rms(plain)} (0.02: as built)`);
  assert.ok(rms(scaled) > 0.7 && rms(scaled) < 1.3, `the recipe's table RMS ${rms(scaled)}`);
  assert.is(SYNTH_RECIPE.posInitStd, 1);
  const cfg = loadCheckpoint(scaled).config as { posInitStd: number; singleObjects: number };
  assert.equal([cfg.posInitStd, cfg.singleObjects], [1, 5]);
  const resolved = (readRun(join(dir, 'pos-scaled', 'p-run')).run as unknown as { resolved: Record<string, unknown> }).resolved;
  assert.equal([resolved.posInitStd, resolved.singleObjects], [1, 5]);
  const plainCfg = loadCheckpoint(plain).config as { posInitStd?: number; singleObjects?: number };
  assert.equal([plainCfg.posInitStd, plainCfg.singleObjects], [0.02, undefined], 'the tiny preset adds no one-object scenes by default');
  // METER: CLIP's visual table (built at std width^-0.5), as built by default
  const runMeterScaled = (posInitStd?: number) => runPretrain({ data: dir, out: join(dir, `pos-meter-${posInitStd}`, 'p.safetensors'), backbone: 'meter', preset: 'tiny', steps: 1, batchSize: 4, lr: 1e-9, posInitStd, log: () => {} });
  const clipKey = 'vit_model.visual.positional_embedding';
  const [meterBuilt, meterScaled] = [(await runMeterScaled()).checkpoint, (await runMeterScaled(1)).checkpoint];
  const w = Math.sqrt(loadCheckpoint(meterBuilt).tensors.get(clipKey)!.shape[1]);
  assert.ok(Math.abs(rms(meterBuilt, clipKey) * w - 1) < 0.3, `METER's table as built: RMS ${rms(meterBuilt, clipKey)} (width^-0.5 = ${1 / w})`);
  assert.ok(rms(meterScaled, clipKey) > 0.7 && rms(meterScaled, clipKey) < 1.3, `METER's scaled table RMS ${rms(meterScaled, clipKey)}`);
});

test('CLI: pretrain writes a checkpoint + vocab.txt that aptune train --pretrained loads; a wrong preset is refused', async () => {
  const out = join(dir, 'pre', 'tiny.safetensors');
  const code = await main(['pretrain', '--data', dir, '--out', out, '--preset', 'tiny', '--steps', '2', '--batch-size', '4', '--eval-every', '2', '--seed', '1']);
  assert.is(code, 0);
  assert.ok(existsSync(out) && existsSync(join(dir, 'pre', 'vocab.txt')));
  const ck = loadCheckpoint(out);
  const cfg = ck.config as { kind: string; vocab: string[]; modelConfig: { hidden: number } };
  assert.is(cfg.kind, 'pretrain');
  assert.equal(readFileSync(join(dir, 'pre', 'vocab.txt'), 'utf8').trim().split('\n'), cfg.vocab);
  for (const k of ['itm_score.fc.weight', 'mlm_score.decoder.weight', 'mlm_score.bias', 'mlm_score.transform.LayerNorm.weight', 'itc_logit_scale', 'transformer.blocks.0.attn.qkv.weight']) assert.ok(ck.tensors.has(k), k);
  // the run directory beside it: every train and gate record, run.json with its summary, the HTML report
  const run = readRun(join(dir, 'pre', 'tiny-run'));
  assert.equal(run.train.map((r) => r.step), [1]);
  assert.equal(run.evals.map((r) => r.step), [2]);
  assert.is(run.run!.command, 'pretrain');
  assert.is(run.run!.summary!.steps, 2);
  assert.is(run.run!.summary!.score!.value, (ck.config as { gates: { itmAcc: number } }).gates.itmAcc);
  assert.ok(existsSync(join(dir, 'pre', 'tiny-run', 'report.html')));
  // --init continues from it (lr tiny: the weights stay close to the file's, far from a fresh init)
  const out2 = join(dir, 'pre2', 'tiny.safetensors');
  assert.is(await main(['pretrain', '--data', dir, '--out', out2, '--preset', 'tiny', '--steps', '1', '--batch-size', '4', '--lr', '1e-9', '--hard-fraction', '0', '--init', out, '--seed', '5']), 0);
  // --evaluate: the gates of the file again, the same figures as at the end of its run, plus t2i by caption kind
  const printed: string[] = [];
  const log0 = console.log;
  console.log = (x: string) => printed.push(String(x));
  try { assert.is(await main(['pretrain', '--evaluate', out, '--data', dir, '--json']), 0); } finally { console.log = log0; }
  const ev = JSON.parse(printed[printed.length - 1]) as Record<string, number>;
  const at = (ck.config as { gates: Record<string, number> }).gates;
  for (const k of ['itmAcc', 'r1T2I', 'r1I2T', 'r1T2IStrict', 'r1T2IPosition']) assert.is(ev[k], at[k], k);
  // and the position probe (216 one-object images): cosines in [-1, 1], recalls in [0, 1] on the 1/216 grid, both <= each
  const pp = (ev as unknown as { positionProbe: Record<string, number> }).positionProbe;
  for (const k of ['imageSameObjectCos', 'textSameObjectCos']) assert.ok(pp[k] >= -1 - 1e-6 && pp[k] <= 1 + 1e-6, `${k} ${pp[k]}`);
  for (const k of ['objectR1', 'cellR1', 'bothR1']) assert.ok(Number.isInteger(Math.round(pp[k] * 216 * 1e6) / 1e6) && pp[k] >= 0 && pp[k] <= 1, `${k} ${pp[k]}`);
  assert.ok(pp.bothR1 <= Math.min(pp.objectR1, pp.cellR1));
  // --itc-warmup: the first half of the run trains the contrastive loss alone (no ITM / MLM in its records)
  const out3 = join(dir, 'pre3', 'tiny.safetensors');
  assert.is(await main(['pretrain', '--data', dir, '--out', out3, '--preset', 'tiny', '--steps', '2', '--batch-size', '4', '--itc-warmup', '0.5', '--itc-positives', 'true', '--seed', '1', '--eval-every', '2']), 0);
  const c3 = loadCheckpoint(out3).config as { itcWarmup: number; itcPositives: string };
  assert.equal([c3.itcWarmup, c3.itcPositives], [0.5, 'true']);
  // --itc-center: recorded in the file and applied again by --evaluate (default 1 for ViLT: the first file's)
  assert.is((ck.config as { itcCenter: number }).itcCenter, 1);
  const out4 = join(dir, 'pre4', 'tiny.safetensors');
  assert.is(await main(['pretrain', '--data', dir, '--out', out4, '--preset', 'tiny', '--steps', '2', '--batch-size', '4', '--itc-center', '0.25', '--seed', '1', '--eval-every', '2']), 0);
  const c4 = loadCheckpoint(out4).config as { itcCenter: number; gates: Record<string, number> };
  assert.is(c4.itcCenter, 0.25);
  printed.length = 0;
  console.log = (x: string) => printed.push(String(x));
  try { assert.is(await main(['pretrain', '--evaluate', out4, '--data', dir, '--json']), 0); } finally { console.log = log0; }
  const ev4 = JSON.parse(printed[printed.length - 1]) as Record<string, number>;
  for (const k of ['r1T2I', 'r1I2T', 'r1T2IStrict', 'r1I2TStrict']) assert.is(ev4[k], c4.gates[k], k);
  assert.is(await main(['pretrain', '--data', dir, '--out', out4, '--itc-center', '1.5']), 2, '--itc-center must be in [0, 1]');
  // a file whose recorded fraction is not one is refused, naming the file and the field
  const ck4 = loadCheckpoint(out4), bad = join(dir, 'pre4', 'bad-center.safetensors');
  saveCheckpoint(bad, ck4.tensors, { ...(ck4.config as Record<string, unknown>), itcCenter: 'half' });
  assert.throws(() => loadPretrainModel(bad), /bad-center\.safetensors: config\.itcCenter must be a number in \[0, 1\], got "half"/);
  // --itc-image-pool flat: the image projection reads all 1 + (32 / 8)^2 tokens; recorded, rebuilt from the file, its gates again
  const out5 = join(dir, 'pre5', 'tiny.safetensors');
  assert.is(await main(['pretrain', '--data', dir, '--out', out5, '--preset', 'tiny', '--steps', '2', '--batch-size', '4', '--itc-image-pool', 'flat', '--seed', '1', '--eval-every', '2']), 0);
  const ck5 = loadCheckpoint(out5), c5 = ck5.config as { itcImagePool: string; itcPool: string; gates: Record<string, number>; modelConfig: { hidden: number } };
  assert.equal([c5.itcImagePool, c5.itcPool], ['flat', 'cls']);
  assert.equal(ck5.tensors.get('itc_image_proj.weight')!.shape[1], 17 * c5.modelConfig.hidden);
  assert.is(loadPretrainModel(out5).heads.imagePool, 'flat');
  printed.length = 0;
  console.log = (x: string) => printed.push(String(x));
  try { assert.is(await main(['pretrain', '--evaluate', out5, '--data', dir, '--json']), 0); } finally { console.log = log0; }
  const ev5 = JSON.parse(printed[printed.length - 1]) as Record<string, number>;
  for (const k of ['itmAcc', 'r1T2I', 'r1I2T', 'r1T2IStrict', 'r1I2TStrict']) assert.is(ev5[k], c5.gates[k], k);
  assert.is(await main(['pretrain', '--data', dir, '--out', out5, '--itc-image-pool', 'grid']), 2, 'an unknown pooling is a usage error');
  const bad5 = join(dir, 'pre5', 'bad-pool.safetensors');
  saveCheckpoint(bad5, ck5.tensors, { ...(ck5.config as Record<string, unknown>), itcImagePool: 'grid' });
  assert.throws(() => loadPretrainModel(bad5), /bad-pool\.safetensors: config\.itcImagePool must be cls, mean or flat, got "grid"/);
  assert.is(loadPretrainModel(out).heads.imagePool, 'cls', 'a file without the field pools the image as its text');
  const first = JSON.parse(readFileSync(join(dir, 'pre3', 'tiny-run', 'metrics.jsonl'), 'utf8').split('\n')[0]) as { itm: number | null; mlm: number | null; itc: number; loss: number };
  assert.equal([first.itm, first.mlm, first.itc], [null, null, first.loss]);
  assert.is(await main(['pretrain', '--data', dir, '--out', out3, '--itc-warmup', '1']), 2, 'the warm-up must leave joint steps');
  const a = ck.tensors.get('transformer.blocks.0.attn.qkv.weight')!.data, b2 = loadCheckpoint(out2).tensors.get('transformer.blocks.0.attn.qkv.weight')!.data;
  assert.ok(a.every((x, i) => Math.abs(x - b2[i]) < 1e-5), '--init did not load the weights');
  const logs: string[] = [];
  const r = await runTrain({ data: dir, task: 'vqa', backbone: 'vilt', config: 'tiny', method: 'apt', pretrained: out, maxSteps: 1, batchSize: 2, out: join(dir, 'ft'), randaug: false, log: (s) => logs.push(s) });
  assert.is(r.steps, 1);
  const line = logs.find((s) => s.startsWith('pretrained '))!;
  const loaded = Number(/: (\d+) tensors loaded/.exec(line)![1]);
  const backboneTensors = [...ck.tensors.keys()].filter((k) => !/^(mlm_score|itc_|itm_score)/.test(k)).length; // the VQA model has no ITM head
  assert.is(loaded, backboneTensors, line);
  assert.equal(readFileSync(join(dir, 'ft', 'vocab.txt'), 'utf8'), readFileSync(join(dir, 'pre', 'vocab.txt'), 'utf8'));
  const wrong = runTrain({ data: dir, task: 'vqa', backbone: 'vilt', config: 'synth', method: 'apt', pretrained: out, maxSteps: 1, batchSize: 2, out: join(dir, 'ft2'), randaug: false, log: () => undefined });
  const err = await wrong.then(() => null, (e: Error) => e);
  assert.ok(err && /modelConfig\.hidden/.test(err.message), String(err));
});

test.run();
