// Task metrics: retrieval recall TR@K / IR@K on a hand-made images x texts score matrix (ties resolved to the lower
// index, K larger than the candidate set clamped), VQA score and accuracy sums, exact running means.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MeanMetric, accuracySum, argmaxRows, retrievalRecall, vqaScoreSum } from '../../train/metrics.ts';

// 3 images (ids 10, 20, 30) x 6 captions, two per image: caption image ids
const textIds = [10, 10, 20, 20, 30, 30];
// rows = images, columns = texts
const S = [
  /* img 10 */ 0.9, 0.1, 0.8, 0.0, 0.2, 0.3, // own captions rank 1st and 3rd
  /* img 20 */ 0.5, 0.6, 0.1, 0.2, 0.7, 0.4, // own captions rank 5th and 6th (last)
  /* img 30 */ 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, // all tied: top-1 is column 0 (image 10)
];

test('TR@K: per image, whether its row top-K holds one of its captions', () => {
  const r = retrievalRecall(S, [10, 20, 30], textIds, [1, 2, 5, 10]);
  assert.is(r.tr[1], 1 / 3, 'only image 10 is right at K = 1');
  assert.is(r.tr[2], 1 / 3);
  assert.is(r.tr[5], 3 / 3, 'image 20 at rank 5; image 30 (ties, lower index first) at rank 5 (column 4)');
  assert.is(r.tr[10], 1, 'K larger than the 6 captions is clamped: every image hits');
});

test('IR@K: per caption, whether its image is among the top-K rows of its column', () => {
  const r = retrievalRecall(S, [10, 20, 30], textIds, [1, 2, 5]);
  // columns: c0 top rows [20(.5),10(.9)] -> sorted: 10(.9), 20(.5), 30(0): hit@1
  // c1: 20(.6), 10(.1), 30(0): 10 at rank 2; c2: 10(.8), 20(.1), 30: 20 at rank 2; c3: 20(.2), 10(0)=30(0): hit@1
  // c4: 20(.7), 10(.2), 30(0): 30 at rank 3; c5: 20(.4), 10(.3), 30(0): rank 3
  assert.is(r.ir[1], 2 / 6);
  assert.is(r.ir[2], 4 / 6);
  assert.is(r.ir[5], 1, 'K = 5 > 3 images: clamped, every caption hits');
});

test('ties: deterministic lower-index-first choice', () => {
  // every score equal: row i's top-1 is column 0, column j's top-1 is row 0
  const r = retrievalRecall([1, 1, 1, 1], ['a', 'b'], ['b', 'a'], [1, 2]);
  assert.is(r.tr[1], 0.5, 'row "b" finds column 0 ("b"); row "a" does not');
  assert.is(r.ir[1], 0.5, 'column "a" (col 1) finds row 0 ("a"); column "b" does not');
  assert.is(r.tr[2], 1);
});

test('bad shapes and K are named', () => {
  assert.throws(() => retrievalRecall([1, 2, 3], [1, 2], [1, 2]), /3 scores for 2 images x 2 texts/);
  assert.throws(() => retrievalRecall([1], [1], [1], [0]), /K must be a positive integer/);
});

test('VQA score: soft target at the argmax; accuracy; exact running means', () => {
  const logits = [0.1, 2, 0.3, /**/ 5, 1, 1];
  const targets = [0, 0.6, 1, /**/ 0.3, 0, 0];
  assert.equal(vqaScoreSum(logits, targets, 2, 3), { sum: 0.6 + 0.3, count: 2 });
  assert.equal(Array.from(argmaxRows([1, 1, 0], 1, 3)), [0], 'first maximum wins');
  assert.equal(accuracySum([0, 1, 1, 0, 0.5, 0.5], [1, 1, 0], 2), { sum: 2, count: 3 });
  const m = new MeanMetric().add({ sum: 1, count: 1 }).add({ sum: 0, count: 3 });
  assert.is(m.value, 0.25, 'sum / count, not the mean of batch means (0.5)');
});

test.run();
