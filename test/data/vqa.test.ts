// VQA answers: the official normaliser (hand-derived cases for each rule, quirks included), the vocabulary
// (count threshold, first-appearance ids), soft scores from raw (unnormalised) answer counts, dense targets, the
// training VQA score, the official 10-annotator accuracy, NLVR2 labels.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  normalizeAnswer, buildAnswerVocab, softScore, labelsAndScores, targetVector, targetMatrix, argmaxRows, vqaScore,
  officialVqaAccuracy, nlvr2Label, vocabFromLabelledAnswers,
} from '../../data/vqa.ts';

test('normaliser: number words, articles, case, punctuation, periods, commas, contractions', () => {
  const cases: [string, string][] = [
    ['Two', '2'], ['none', '0'], ['ten', '10'], ['eleven', 'eleven'],
    ['the dog.', 'dog'], ['A red car!', 'red car'], ['an apple', 'apple'], ['theatre', 'theatre'],
    ['yes, it is', 'yes it is'], // ", " present: the comma is removed, not spaced
    ['1,000', '1000'], // comma between digits: every punctuation mark is removed
    ['3.5', '3.5'], ['3.', '3'], ['t-shirt', 't shirt'], ['left - right', 'left right'],
    ['dont', "don't"], ['isnt', "isn't"], ['Whats', "what's"], ['Im', 'im'], // capital-I keys never match
    ["  Man's   hat ", "man's hat"], ['red/white', 'red white'], ['(yes)', 'yes'], ['no?', 'no'],
    ['two dogs', '2 dogs'], ['ONE', '1'], ['', ''],
  ];
  for (const [a, want] of cases) assert.is(normalizeAnswer(a), want, `normalizeAnswer(${JSON.stringify(a)})`);
});

test('normaliser: the period rule removes at most 32 periods (official re.UNICODE-as-count quirk)', () => {
  assert.is(normalizeAnswer('x.'.repeat(40)), 'x'.repeat(32) + 'x.'.repeat(8));
  assert.is(normalizeAnswer('x.'.repeat(32)), 'x'.repeat(32));
});

test('vocabulary: normalised multiple-choice answers, count >= threshold, first-appearance ids', () => {
  const mc = ['b', 'Two', 'x', 'b', '2', 'x', 'c', 'The b', 'z', 'a', 'an'];
  const v = buildAnswerVocab(mc, 2);
  assert.equal(v.label2ans, ['b', '2', 'x', '']); // 'c' and 'z' appear once; 'a' and 'an' normalise to ''
  assert.is(v.ans2label.get('2'), 1);
  assert.equal(buildAnswerVocab(mc).label2ans, []); // default threshold 9
  const many = [...Array(9).fill('yes'), ...Array(8).fill('no'), 'no'];
  assert.equal(buildAnswerVocab(many).label2ans, ['yes', 'no']);
});

test('soft scores 0.3/0.6/0.9/1.0 from raw answer counts, unnormalised (reference quirk)', () => {
  assert.equal([0, 1, 2, 3, 4, 10].map(softScore), [0, 0.3, 0.6, 0.9, 1.0, 1.0]);
  const v = buildAnswerVocab([...Array(9).fill('yes'), ...Array(9).fill('2')]);
  const raw = ['yes', 'yes', 'yes', 'Yes', 'Yes', 'two', '2', '2', 'no', 'yes'];
  const ls = labelsAndScores(raw, v);
  // 'Yes' and 'two' are not counted as 'yes' / '2': raw answers are not normalised before the lookup
  assert.equal(ls, { labels: [0, 1], scores: [1.0, 0.6] });
  assert.equal(labelsAndScores(['maybe'], v), { labels: [], scores: [] });
});

test('dense targets, argmax, training VQA score', () => {
  assert.equal(targetVector([2, 0], [0.9, 0.3], 4), Float32Array.from([0.3, 0, 0.9, 0]));
  const m = targetMatrix([[1], []], [[1.0], []], 3);
  assert.equal(Array.from(m), [0, 1, 0, 0, 0, 0]);
  try { targetVector([5], [1], 3); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'label 5 outside [0, 3)'); }
  const pred = argmaxRows([0.1, 2, -1, /**/ 3, 0, 0, /**/ 0, 0, 9], 3);
  assert.equal(Array.from(pred), [1, 0, 2]);
  const s = vqaScore(pred, [[1, 0], [2], [2, 1]], [[0.6, 1.0], [1.0], [0.3, 0.9]]);
  assert.equal(s, { sum: 0.6 + 0 + 0.3, count: 3 });
});

test('official accuracy: evaluation-server normalisation and leave-one-out min(1, matches/3)', () => {
  const h = ['2', 'two', '2', '3', '3', '3', '3', '3', '3', '3'];
  // humans disagree: humans get the punctuation step only ('two' stays 'two'), the prediction both steps ('Two' -> '2');
  // 2 humans match: leaving out one of them -> 1/3, leaving out another -> 2/3
  assert.ok(Math.abs(officialVqaAccuracy('Two', h) - (2 * (1 / 3) + 8 * (2 / 3)) / 10) < 1e-12);
  assert.is(officialVqaAccuracy('3', h), 1);
  assert.is(officialVqaAccuracy('4', h), 0);
  const one = ['cat', ...Array(9).fill('dog')];
  assert.ok(Math.abs(officialVqaAccuracy('cat', one) - (9 * (1 / 3) + 0) / 10) < 1e-12);
  // humans agree: exact match only (no normalisation of the prediction)
  assert.is(officialVqaAccuracy('Two', Array(10).fill('2')), 0);
  assert.is(officialVqaAccuracy(' 2 ', Array(10).fill('2')), 1);
});

test('NLVR2 labels and the vocabulary recovered from labelled tables', () => {
  assert.is(nlvr2Label('True'), 1);
  assert.is(nlvr2Label('False'), 0);
  try { nlvr2Label('true', 'nlvr2_dev.arrow row 3'); assert.unreachable(); } catch (e) { assert.match((e as Error).message, 'nlvr2_dev.arrow row 3: expected "True" or "False"'); }
  const v = vocabFromLabelledAnswers([['yes', 0], ['2', 3], ['no', 1]]);
  assert.is(v.numClasses, 4);
  assert.is(v.id2answer(3), '2');
  assert.is(v.id2answer(2), 'unknown');
});

test.run();
