// The synthetic vision-language benchmark (`aptune synth`): scenes of coloured shapes (scenes.ts) written in the
// three exact ViLT layouts of apt-spec §5.1, plus an image-caption corpus for pre-training a small backbone:
//   vqav2_{train,val,trainable_val,rest_val,test}.arrow   one row per image; questions on colour, shape, count,
//       existence, position, relation and size; 10 simulated human answers per question -> answer vocabulary
//       (count >= 9, first appearance) and soft scores exactly as the reference writer; some questions are
//       ambiguous (two objects fit) and carry split human answers. Unlike real VQAv2, the test table HAS answers.
//   nlvr2_{train,dev,test1}.arrow   image pairs, true/false statements that need both images.
//   f30k_caption_karpathy_{train,val,test}.arrow   five captions per image (retrieval).
//   synth_caption_{train,val}.arrow   pre-training corpus, five captions per image + one verified hard negative per
//       caption (extra column `negatives`, "" where none was found) + the scene as JSON (extra column `scene`).
// Design rules followed (shared/reference/synthetic-benchmark.md): answers balanced within each question type
// (greedy least-used answer per scene), same-scene minimal pairs whose answers differ (existence, relation; NLVR2
// flips), every caption / statement / negative checked against the scene (`holds`), captions rich in position,
// size, count and relation words.
// The report (report.json + stdout) gives two trivial baselines on the VQA test split, a question-type answer prior
// (text only, fitted on train) and an image-only k-nearest-neighbour on 8x8 pixels (question ignored), the oracle
// that reads the scene, and the NLVR2 statement-type prior.
// Does not: depend on the engine, tokenise, or train anything.
// Invariants: output is a pure function of (seed, sizes, image size) (the seeded Rng forks one stream per
// split and task); every table is written through a temporary file and renamed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { Rng } from './rng.ts';
import { writeTable, VQAV2_LAYOUT, NLVR2_LAYOUT, F30K_LAYOUT, CAPTION_LAYOUT, type ColumnKind } from './arrow.ts';
import { buildAnswerVocab, labelsAndScores, normalizeAnswer, type AnswerVocab } from './vqa.ts';
import { writeFileAtomicSync } from '../atomic.ts';
import { UsageError } from '../usage-error.ts';
import {
  COLORS, SHAPES, SIZES, COLUMNS, ROWS, randomScene, renderScenes, sceneJson, find, colOf, rowOf, holds, falsify,
  captionText, numberWord, article, type Scene, type Claim, type ObjRef, type Relation,
} from './scenes.ts';

// ---------------------------------------------------------------------------------------------------------------
// Sizes

export interface SynthSizes {
  vqaTrain: number; vqaVal: number; vqaTest: number; questionsPerImage: number;
  nlvr2Train: number; nlvr2Dev: number; nlvr2Test: number; sentencesPerPair: number;
  f30kTrain: number; f30kVal: number; f30kTest: number;
  captionTrain: number; captionVal: number;
  /** answer-vocabulary threshold (the reference uses 9) */
  minAnswerCount: number;
}

export const SIZE_PRESETS: Record<'tiny' | 'small' | 'default' | 'large', SynthSizes> = {
  tiny: { vqaTrain: 40, vqaVal: 10, vqaTest: 20, questionsPerImage: 4, nlvr2Train: 16, nlvr2Dev: 6, nlvr2Test: 6, sentencesPerPair: 4, f30kTrain: 12, f30kVal: 4, f30kTest: 6, captionTrain: 12, captionVal: 4, minAnswerCount: 1 },
  small: { vqaTrain: 400, vqaVal: 60, vqaTest: 120, questionsPerImage: 5, nlvr2Train: 300, nlvr2Dev: 50, nlvr2Test: 50, sentencesPerPair: 4, f30kTrain: 200, f30kVal: 30, f30kTest: 60, captionTrain: 400, captionVal: 60, minAnswerCount: 9 },
  default: { vqaTrain: 1500, vqaVal: 200, vqaTest: 400, questionsPerImage: 5, nlvr2Train: 1200, nlvr2Dev: 150, nlvr2Test: 150, sentencesPerPair: 4, f30kTrain: 1000, f30kVal: 100, f30kTest: 200, captionTrain: 2000, captionVal: 200, minAnswerCount: 9 },
  large: { vqaTrain: 6000, vqaVal: 800, vqaTest: 1600, questionsPerImage: 5, nlvr2Train: 5000, nlvr2Dev: 600, nlvr2Test: 600, sentencesPerPair: 4, f30kTrain: 4000, f30kVal: 400, f30kTest: 800, captionTrain: 8000, captionVal: 800, minAnswerCount: 9 },
};

export interface SynthOptions {
  out: string;
  seed?: number;
  sizes?: Partial<SynthSizes>;
  preset?: keyof typeof SIZE_PRESETS;
  imageSize?: number;
  /** concurrent sharp renders (default 4) */
  concurrency?: number;
  log?: (msg: string) => void;
}

// ---------------------------------------------------------------------------------------------------------------
// VQA questions

export const QUESTION_TYPES = ['color', 'shape', 'count_shape', 'count_color', 'exists', 'column', 'row', 'relation', 'size'] as const;
export type QuestionType = typeof QUESTION_TYPES[number];

interface QCand { type: QuestionType; question: string; answer: string; ambiguous?: string[]; pair?: { question: string; answer: string } }

export interface SynthQuestion {
  type: QuestionType; question: string; truth: string; rawAnswers: string[]; multipleChoice: string;
  /** answers a scene-reading oracle considers correct (several for ambiguous questions) */
  valid: string[];
}

const VARIANTS: Record<string, string[]> = {
  circle: ['round', 'ball'], square: ['box', 'rectangle'], triangle: ['triangular'], diamond: ['rhombus'],
  purple: ['violet'], orange: ['Orange'], red: ['Red'], green: ['Green'], blue: ['Blue'], yellow: ['Yellow'],
  yes: ['yeah', 'Yes'], no: ['nope', 'No'], '0': ['zero', 'none'], '1': ['one'], '2': ['two'], '3': ['three'],
  left: ['left side'], right: ['right side'], center: ['centre', 'middle'], top: ['up'], middle: ['center'],
  bottom: ['down'], small: ['tiny'], large: ['big'],
};

const shapeWord = (s: number) => SHAPES[s];
const colorWord = (c: number) => COLORS[c];
const REL_WORD: Relation[] = ['left of', 'right of', 'above', 'below'];
const relQ = (r: Relation) => (r === 'left of' ? 'to the left of' : r === 'right of' ? 'to the right of' : r);

function questionCandidates(scene: Scene, rng: Rng, ambiguousRate: number): Map<QuestionType, QCand[]> {
  const m = new Map<QuestionType, QCand[]>(QUESTION_TYPES.map((t) => [t, []]));
  const objs = scene.objects;
  for (let s = 0; s < SHAPES.length; s++) {
    const os = find(scene, { shape: s });
    if (os.length === 1) m.get('color')!.push({ type: 'color', question: `what color is the ${shapeWord(s)}?`, answer: colorWord(os[0].color) });
    else if (os.length >= 2 && rng.next() < ambiguousRate) {
      m.get('color')!.push({ type: 'color', question: `what color is the ${shapeWord(s)}?`, answer: colorWord(os[0].color), ambiguous: os.map((o) => colorWord(o.color)) });
    }
    if (os.length <= 3) m.get('count_shape')!.push({ type: 'count_shape', question: `how many ${shapeWord(s)}s are there?`, answer: String(os.length) });
  }
  for (let c = 0; c < COLORS.length; c++) {
    const os = find(scene, { color: c });
    if (os.length === 1) m.get('shape')!.push({ type: 'shape', question: `what shape is the ${colorWord(c)} object?`, answer: shapeWord(os[0].shape) });
    if (os.length <= 3) m.get('count_color')!.push({ type: 'count_color', question: `how many ${colorWord(c)} objects are there?`, answer: String(os.length) });
  }
  for (let c = 0; c < COLORS.length; c++) for (let s = 0; s < SHAPES.length; s++) {
    const present = find(scene, { color: c, shape: s }).length > 0;
    // minimal pair: same scene, one content word changed, the other answer
    const partners: string[] = [];
    for (let s2 = 0; s2 < SHAPES.length; s2++) if (s2 !== s && (find(scene, { color: c, shape: s2 }).length > 0) !== present) partners.push(`is there ${article(`${colorWord(c)} ${shapeWord(s2)}`)}?`);
    for (let c2 = 0; c2 < COLORS.length; c2++) if (c2 !== c && (find(scene, { color: c2, shape: s }).length > 0) !== present) partners.push(`is there ${article(`${colorWord(c2)} ${shapeWord(s)}`)}?`);
    const pair = partners.length ? { question: rng.pick(partners), answer: present ? 'no' : 'yes' } : undefined;
    m.get('exists')!.push({ type: 'exists', question: `is there ${article(`${colorWord(c)} ${shapeWord(s)}`)}?`, answer: present ? 'yes' : 'no', pair });
  }
  for (const o of objs) {
    const np = `${colorWord(o.color)} ${shapeWord(o.shape)}`;
    m.get('column')!.push({ type: 'column', question: `is the ${np} on the left, center or right?`, answer: COLUMNS[colOf(o)] });
    m.get('row')!.push({ type: 'row', question: `is the ${np} at the top, middle or bottom?`, answer: ROWS[rowOf(o)] });
    m.get('size')!.push({ type: 'size', question: `is the ${np} small or large?`, answer: SIZES[o.size] });
    for (const p of objs) {
      if (p === o) continue;
      const rel = rng.pick(REL_WORD);
      const horizontal = rel === 'left of' || rel === 'right of';
      if (horizontal ? colOf(o) === colOf(p) : rowOf(o) === rowOf(p)) continue; // keep relations decidable
      const a: ObjRef = { color: o.color, shape: o.shape }, b: ObjRef = { color: p.color, shape: p.shape };
      const t = holds(scene, { kind: 'rel', a, rel, b });
      const q = (x: ObjRef, y: ObjRef) => `is the ${colorWord(x.color!)} ${shapeWord(x.shape!)} ${relQ(rel)} the ${colorWord(y.color!)} ${shapeWord(y.shape!)}?`;
      m.get('relation')!.push({ type: 'relation', question: q(a, b), answer: t ? 'yes' : 'no', pair: { question: q(b, a), answer: t ? 'no' : 'yes' } });
    }
  }
  return m;
}

/** Ten human-style answers for a truth, with occasional synonyms / capitalised variants (dropped or partial). */
function humanAnswers(truth: string, rng: Rng, ambiguous?: string[]): string[] {
  if (ambiguous && ambiguous.length >= 2) {
    const splits = [[5, 5], [6, 4], [7, 3], [4, 4, 2]];
    const sp = rng.pick(splits.filter((x) => x.length <= ambiguous.length));
    const cols = rng.shuffle([...ambiguous]);
    const out: string[] = [];
    sp.forEach((n, i) => { for (let k = 0; k < n; k++) out.push(cols[i]); });
    return rng.shuffle(out);
  }
  const out = new Array<string>(10).fill(truth);
  if (rng.next() < 0.3 && VARIANTS[truth]) {
    const k = 1 + rng.int(2);
    for (let i = 0; i < k; i++) out[rng.int(10)] = rng.pick(VARIANTS[truth]);
  }
  return out;
}

function majority(xs: readonly string[]): string {
  const m = new Map<string, number>();
  for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
  let best = xs[0], bn = 0;
  for (const [k, n] of m) if (n > bn) { best = k; bn = n; }
  return best;
}

interface VqaImage { scene: Scene; questions: SynthQuestion[] }

/** Questions of one split, answers balanced within each type by choosing the least-used answer per slot. */
function makeVqaSplit(rng: Rng, nImages: number, perImage: number, ambiguousRate: number): VqaImage[] {
  const used = new Map<QuestionType, Map<string, number>>(QUESTION_TYPES.map((t) => [t, new Map()]));
  const images: VqaImage[] = [];
  for (let i = 0; i < nImages; i++) {
    const scene = randomScene(rng, 2, 5);
    const cands = questionCandidates(scene, rng, ambiguousRate);
    const qs: SynthQuestion[] = [];
    const seen = new Set<string>();
    const types = rng.shuffle([...QUESTION_TYPES]);
    const add = (type: QuestionType, question: string, truth: string, ambiguous?: string[]) => {
      seen.add(question);
      const rawAnswers = humanAnswers(truth, rng, ambiguous);
      qs.push({ type, question, truth, rawAnswers, multipleChoice: majority(rawAnswers), valid: ambiguous ? [...new Set(ambiguous)] : [truth] });
      const u = used.get(type)!;
      u.set(truth, (u.get(truth) ?? 0) + 1);
    };
    for (let t = 0; qs.length < perImage && t < types.length * 2; t++) {
      const type = types[t % types.length];
      const cs = cands.get(type)!.filter((c) => !seen.has(c.question));
      if (cs.length === 0) continue;
      const u = used.get(type)!;
      let minUse = Infinity;
      for (const c of cs) minUse = Math.min(minUse, u.get(c.answer) ?? 0);
      const c = rng.pick(cs.filter((x) => (u.get(x.answer) ?? 0) === minUse));
      add(type, c.question, c.answer, c.ambiguous);
      if (c.pair && qs.length < perImage && !seen.has(c.pair.question)) add(type, c.pair.question, c.pair.answer);
    }
    images.push({ scene, questions: qs });
  }
  return images;
}

// ---------------------------------------------------------------------------------------------------------------
// NLVR2 statements

interface Statement { type: string; text: string; truth: boolean }

function nlvr2Candidates(L: Scene, R: Scene): Statement[] {
  const out: Statement[] = [];
  const cnt = (s: Scene, r: ObjRef) => find(s, r).length;
  for (let s = 0; s < SHAPES.length; s++) {
    const a = cnt(L, { shape: s }), b = cnt(R, { shape: s });
    for (const n of [a + b - 1, a + b, a + b + 1]) if (n >= 1 && n <= 6) {
      out.push({ type: 'total', text: `there are ${numberWord(n)} ${SHAPES[s]}${n === 1 ? '' : 's'} in the two images together`, truth: n === a + b });
    }
    out.push({ type: 'more', text: `the left image has more ${SHAPES[s]}s than the right image`, truth: a > b });
    out.push({ type: 'more', text: `the left image has fewer ${SHAPES[s]}s than the right image`, truth: a < b });
    out.push({ type: 'both_shape', text: `both images contain a ${SHAPES[s]}`, truth: a > 0 && b > 0 });
  }
  for (let c = 0; c < COLORS.length; c++) for (let s = 0; s < SHAPES.length; s++) {
    const a = cnt(L, { color: c, shape: s }) > 0, b = cnt(R, { color: c, shape: s }) > 0;
    if (!a && !b && (c + s) % 3 !== 0) continue; // keep the all-absent case from dominating
    out.push({ type: 'both', text: `both images contain ${article(`${COLORS[c]} ${SHAPES[s]}`)}`, truth: a && b });
    out.push({ type: 'exactly_one', text: `exactly one image contains ${article(`${COLORS[c]} ${SHAPES[s]}`)}`, truth: a !== b });
  }
  for (let c = 0; c < COLORS.length; c++) {
    const a = cnt(L, { color: c }) > 0, b = cnt(R, { color: c }) > 0;
    out.push({ type: 'each_color', text: `there is ${article(`${COLORS[c]} object`)} in each image`, truth: a && b });
  }
  out.push({ type: 'same_total', text: 'the two images contain the same number of shapes', truth: L.objects.length === R.objects.length });
  out.push({ type: 'same_total', text: 'the left image contains more shapes than the right image', truth: L.objects.length > R.objects.length });
  return out;
}

interface NlvrPair { left: Scene; right: Scene; statements: Statement[] }

function makeNlvr2Split(rng: Rng, nPairs: number, perPair: number): NlvrPair[] {
  const used = new Map<string, [number, number]>(); // type -> [false, true] counts
  const pairs: NlvrPair[] = [];
  for (let i = 0; i < nPairs; i++) {
    const left = randomScene(rng, 2, 5), right = randomScene(rng, 2, 5);
    const cands = rng.shuffle(nlvr2Candidates(left, right));
    const chosen: Statement[] = [];
    const types = rng.shuffle([...new Set(cands.map((c) => c.type))]);
    for (let t = 0; chosen.length < perPair && t < types.length * 2; t++) {
      const type = types[t % types.length];
      const u = used.get(type) ?? [0, 0];
      const wantTrue = u[1] < u[0] || (u[1] === u[0] && rng.next() < 0.5);
      // prefer the under-used truth value; within a pair alternate true/false (minimal contrasts on one image pair)
      const c = cands.find((x) => x.type === type && x.truth === wantTrue && !chosen.includes(x));
      if (!c) continue;
      chosen.push(c);
      u[c.truth ? 1 : 0]++;
      used.set(type, u);
    }
    pairs.push({ left, right, statements: chosen });
  }
  return pairs;
}

// ---------------------------------------------------------------------------------------------------------------
// Captions (retrieval and pre-training corpus)

function captionClaims(scene: Scene, rng: Rng, style: number): Claim[] {
  const objs = rng.shuffle([...scene.objects]);
  const ref = (o: (typeof objs)[number], extra: Partial<ObjRef> = {}): ObjRef => ({ color: o.color, shape: o.shape, ...extra });
  switch (style) {
    case 0: return objs.map((o) => ({ kind: 'exists', obj: ref(o, rng.next() < 0.5 ? { size: o.size } : {}) }));
    case 1: return objs.slice(0, 1 + rng.int(2)).map((o) => ({ kind: 'exists', obj: ref(o, { row: rowOf(o), col: colOf(o) }) }));
    case 2: {
      const shapes = [...new Set(objs.map((o) => o.shape))];
      const cl: Claim[] = shapes.map((s) => ({ kind: 'count', obj: { shape: s }, n: find(scene, { shape: s }).length }));
      cl.push({ kind: 'total', n: scene.objects.length });
      return cl;
    }
    case 3: {
      const cl: Claim[] = [];
      for (const o of objs) for (const p of objs) {
        if (o === p || cl.length >= 2) continue;
        const rels = REL_WORD.filter((r) => holds(scene, { kind: 'rel', a: ref(o), rel: r, b: ref(p) }));
        if (rels.length) cl.push({ kind: 'rel', a: ref(o), rel: rng.pick(rels), b: ref(p) });
      }
      return cl.length ? cl : [{ kind: 'total', n: scene.objects.length }];
    }
    default: {
      const o = objs[0];
      const colorsPresent = [...new Set(objs.map((x) => x.color))];
      const c = rng.pick(colorsPresent);
      return [{ kind: 'exists', obj: ref(o, { size: o.size, col: colOf(o) }) }, { kind: 'count', obj: { color: c }, n: find(scene, { color: c }).length }];
    }
  }
}

interface Captioned { scene: Scene; captions: string[]; negatives: string[] }

function makeCaptionSplit(rng: Rng, n: number, withNegatives: boolean, stats: { negatives: number; noNegative: number; checked: number }): Captioned[] {
  const out: Captioned[] = [];
  for (let i = 0; i < n; i++) {
    const scene = randomScene(rng, 2, 5);
    const captions: string[] = [], negatives: string[] = [];
    for (let style = 0, tries = 0; captions.length < 5 && tries < 20; tries++, style++) {
      const claims = captionClaims(scene, rng, style % 5);
      for (const c of claims) if (!holds(scene, c)) throw new Error(`synthetic: internal error, caption claim false: ${JSON.stringify(c)}`);
      const text = captionText(claims);
      if (captions.includes(text)) continue;
      captions.push(text);
      if (withNegatives) {
        const k = rng.int(claims.length);
        const bad = falsify(scene, claims[k], rng);
        stats.checked++;
        if (bad) { const neg = [...claims]; neg[k] = bad; negatives.push(captionText(neg)); stats.negatives++; } else { negatives.push(''); stats.noNegative++; }
      }
    }
    out.push({ scene, captions, negatives });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Baselines

async function pixelFeatures(images: readonly Uint8Array[]): Promise<Float32Array[]> {
  const out: Float32Array[] = new Array(images.length);
  let next = 0;
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < images.length) {
      const i = next++;
      const raw = await sharp(images[i]).resize(8, 8, { fit: 'fill' }).removeAlpha().raw().toBuffer();
      out[i] = Float32Array.from(raw, (v) => v / 255);
    }
  }));
  return out;
}

interface ScoredQuestion { type: QuestionType; labels: number[]; scores: number[]; valid: string[] }
const scoreOf = (q: ScoredQuestion, label: number): number => { const k = q.labels.indexOf(label); return k >= 0 ? q.scores[k] : 0; };

export interface Baselines {
  /** text only: most common (highest summed soft score) train answer per question type */
  questionTypePrior: number;
  /** image only: k-NN (k=5) on 8x8 RGB pixels over train images, answer = highest summed score among neighbours' questions */
  imageOnlyKnn: number;
  /** shallow combination (for information): question type + the same neighbours, restricted to that type's questions */
  typePlusImageKnn: number;
  /** a reader of the scene: the truth for unambiguous questions, a uniform pick among the fitting answers otherwise */
  oracle: number;
  /** majority answer over all train questions */
  majorityAnswer: number;
}

async function vqaBaselines(train: { images: Uint8Array[]; qs: ScoredQuestion[][] }, test: { images: Uint8Array[]; qs: ScoredQuestion[][] }, vocab: AnswerVocab): Promise<Baselines> {
  const C = vocab.label2ans.length;
  const typeScore = new Map<QuestionType, Float64Array>();
  const all = new Float64Array(C);
  for (const qs of train.qs) for (const q of qs) {
    let t = typeScore.get(q.type);
    if (!t) typeScore.set(q.type, (t = new Float64Array(C)));
    q.labels.forEach((l, k) => { t![l] += q.scores[k]; all[l] += q.scores[k]; });
  }
  const argmax = (v: Float64Array) => { let b = 0; for (let i = 1; i < v.length; i++) if (v[i] > v[b]) b = i; return b; };
  const majority = argmax(all);
  const typePred = new Map<QuestionType, number>([...typeScore].map(([t, v]) => [t, argmax(v)]));
  const ftr = await pixelFeatures(train.images), fte = await pixelFeatures(test.images);
  let n = 0, prior = 0, img = 0, combo = 0, oracle = 0, maj = 0;
  for (let i = 0; i < test.qs.length; i++) {
    const d: [number, number][] = ftr.map((f, j) => { let s = 0; for (let k = 0; k < f.length; k++) { const e = f[k] - fte[i][k]; s += e * e; } return [s, j]; });
    d.sort((a, b) => a[0] - b[0]);
    const nb = d.slice(0, 5).map((x) => x[1]);
    const imgVotes = new Float64Array(C);
    for (const j of nb) for (const q of train.qs[j]) q.labels.forEach((l, k) => { imgVotes[l] += q.scores[k]; });
    const imgPred = argmax(imgVotes);
    for (const q of test.qs[i]) {
      n++;
      prior += scoreOf(q, typePred.get(q.type) ?? majority);
      img += scoreOf(q, imgPred);
      maj += scoreOf(q, majority);
      const tv = new Float64Array(C);
      let any = false;
      for (const j of nb) for (const p of train.qs[j]) if (p.type === q.type) p.labels.forEach((l, k) => { tv[l] += p.scores[k]; any = true; });
      combo += scoreOf(q, any ? argmax(tv) : (typePred.get(q.type) ?? majority));
      let o = 0;
      for (const a of q.valid) { const id = vocab.ans2label.get(normalizeAnswer(a)); o += id === undefined ? 0 : scoreOf(q, id); }
      oracle += o / q.valid.length;
    }
  }
  const r = (x: number) => (n ? x / n : 0);
  return { questionTypePrior: r(prior), imageOnlyKnn: r(img), typePlusImageKnn: r(combo), oracle: r(oracle), majorityAnswer: r(maj) };
}

// ---------------------------------------------------------------------------------------------------------------
// Generation

export interface SynthReport {
  seed: number; imageSize: number; sizes: SynthSizes; seconds: number;
  tables: Record<string, { rows: number; items: number }>;
  vqa: {
    answers: string[]; questionsPerType: Record<string, number>; maxAnswerShareWithinType: Record<string, number>;
    ambiguousQuestions: number; droppedQuestions: number; testBaselines: Baselines;
  };
  nlvr2: { trueFraction: number; statementTypePriorTest: number };
  captions: { hardNegatives: number; captionsWithoutNegative: number };
}

const VQA_EXTRA: Record<string, ColumnKind> = { question_types: 'list<string>', scene: 'string' };

/** Generate the benchmark into opts.out; returns the report (also written to report.json). */
export async function generateSynthetic(opts: SynthOptions): Promise<SynthReport> {
  const t0 = performance.now();
  const seed = opts.seed ?? 0;
  const sizes: SynthSizes = { ...SIZE_PRESETS[opts.preset ?? 'default'], ...(opts.sizes ?? {}) };
  for (const [k, v] of Object.entries(sizes)) if (!Number.isInteger(v) || v < 0) throw new Error(`synth: size "${k}" must be a non-negative integer, got ${v}`);
  const imageSize = opts.imageSize ?? 64;
  if (!Number.isInteger(imageSize) || imageSize < 16 || imageSize > 1024) throw new Error(`synth: --image-size must be an integer in [16, 1024], got ${imageSize}`);
  const conc = opts.concurrency ?? 4;
  const log = opts.log ?? (() => undefined);
  const root = new Rng(seed);
  const out = opts.out;
  fs.mkdirSync(out, { recursive: true });
  const tables: SynthReport['tables'] = {};
  const note = (name: string, rows: number, items: number) => { tables[name] = { rows, items }; };

  // ---- VQA
  const vqaSplits = { train: makeVqaSplit(root.fork('vqa/train'), sizes.vqaTrain, sizes.questionsPerImage, 0.3),
    val: makeVqaSplit(root.fork('vqa/val'), sizes.vqaVal, sizes.questionsPerImage, 0.3),
    test: makeVqaSplit(root.fork('vqa/test'), sizes.vqaTest, sizes.questionsPerImage, 0.3) };
  const vocab = buildAnswerVocab([...vqaSplits.train, ...vqaSplits.val].flatMap((im) => im.questions.map((q) => q.multipleChoice)), sizes.minAnswerCount);
  let dropped = 0, ambiguous = 0;
  const perType: Record<string, number> = {};
  const answerUse: Record<string, Map<string, number>> = {};
  const scored: Record<string, { images: Uint8Array[]; qs: ScoredQuestion[][] }> = {};
  for (const [split, imgs] of Object.entries(vqaSplits)) {
    const pngs = await renderScenes(imgs.map((x) => x.scene), imageSize, conc);
    const rows: Record<string, unknown>[] = [];
    scored[split] = { images: [], qs: [] };
    imgs.forEach((im, i) => {
      const kept = im.questions.map((q) => ({ q, ...labelsAndScores(q.rawAnswers, vocab) })).filter((x) => {
        if (x.labels.length === 0) { dropped++; return false; }
        return true;
      });
      if (kept.length === 0) return; // the reference drops images left without questions
      if (split === 'train') for (const { q } of kept) {
        perType[q.type] = (perType[q.type] ?? 0) + 1;
        const m = (answerUse[q.type] ??= new Map());
        m.set(q.truth, (m.get(q.truth) ?? 0) + 1);
      }
      ambiguous += kept.filter((x) => x.q.valid.length > 1).length;
      const base = split === 'train' ? 1_000_000 : split === 'val' ? 2_000_000 : 3_000_000;
      const iid = base + i;
      rows.push({
        image: pngs[i], questions: kept.map((x) => x.q.question),
        answers: kept.map((x) => x.labels.map((l) => vocab.label2ans[l])), answer_labels: kept.map((x) => x.labels),
        answer_scores: kept.map((x) => x.scores), image_id: iid, question_id: kept.map((_, k) => iid * 100 + k),
        split, question_types: kept.map((x) => x.q.type), scene: sceneJson(im.scene),
      });
      scored[split].images.push(pngs[i]);
      scored[split].qs.push(kept.map((x) => ({ type: x.q.type, labels: x.labels, scores: x.scores, valid: x.q.valid })));
    });
    const cols = { ...VQAV2_LAYOUT.columns, ...VQA_EXTRA };
    const items = rows.reduce((s, r) => s + (r.questions as string[]).length, 0);
    await writeTable(path.join(out, `vqav2_${split}.arrow`), cols, rows);
    note(`vqav2_${split}`, rows.length, items);
    if (split === 'val') {
      const rest = Math.floor(rows.length / 2);
      const a = rows.slice(0, rows.length - rest), b = rows.slice(rows.length - rest);
      await writeTable(path.join(out, 'vqav2_trainable_val.arrow'), cols, a);
      await writeTable(path.join(out, 'vqav2_rest_val.arrow'), cols, b);
      note('vqav2_trainable_val', a.length, a.reduce((s, r) => s + (r.questions as string[]).length, 0));
      note('vqav2_rest_val', b.length, b.reduce((s, r) => s + (r.questions as string[]).length, 0));
    }
    log(`vqav2_${split}: ${rows.length} images, ${items} questions`);
  }
  const testBaselines = await vqaBaselines(scored.train, scored.test, vocab);
  const maxShare: Record<string, number> = {};
  for (const [t, m] of Object.entries(answerUse)) { let tot = 0, mx = 0; for (const v of m.values()) { tot += v; mx = Math.max(mx, v); } maxShare[t] = tot ? mx / tot : 0; }

  // ---- NLVR2
  let nTrue = 0, nStat = 0, priorHits = 0, priorN = 0;
  const typeTruth = new Map<string, [number, number]>();
  const nlvrData: Record<string, NlvrPair[]> = {
    train: makeNlvr2Split(root.fork('nlvr2/train'), sizes.nlvr2Train, sizes.sentencesPerPair),
    dev: makeNlvr2Split(root.fork('nlvr2/dev'), sizes.nlvr2Dev, sizes.sentencesPerPair),
    test1: makeNlvr2Split(root.fork('nlvr2/test1'), sizes.nlvr2Test, sizes.sentencesPerPair),
  };
  for (const p of nlvrData.train) for (const s of p.statements) { const u = typeTruth.get(s.type) ?? [0, 0]; u[s.truth ? 1 : 0]++; typeTruth.set(s.type, u); }
  for (const [split, pairs] of Object.entries(nlvrData)) {
    const pngs = await renderScenes(pairs.flatMap((p) => [p.left, p.right]), imageSize, conc);
    const rows = pairs.map((p, i) => {
      for (const s of p.statements) {
        nTrue += s.truth ? 1 : 0; nStat++;
        if (split === 'test1') { const u = typeTruth.get(s.type) ?? [1, 0]; priorHits += ((u[1] > u[0]) === s.truth) ? 1 : 0; priorN++; }
      }
      return {
        image_0: pngs[2 * i], image_1: pngs[2 * i + 1], questions: p.statements.map((s) => s.text),
        answers: p.statements.map((s) => (s.truth ? 'True' : 'False')), identifier: `${split}-${i}-0`,
        statement_types: p.statements.map((s) => s.type), scene: JSON.stringify([JSON.parse(sceneJson(p.left)), JSON.parse(sceneJson(p.right))]),
      };
    });
    await writeTable(path.join(out, `nlvr2_${split}.arrow`), { ...NLVR2_LAYOUT.columns, statement_types: 'list<string>', scene: 'string' }, rows);
    note(`nlvr2_${split}`, rows.length, rows.reduce((s, r) => s + r.questions.length, 0));
    log(`nlvr2_${split}: ${rows.length} pairs`);
  }

  // ---- Retrieval (F30K layout) and the caption corpus
  const capStats = { negatives: 0, noNegative: 0, checked: 0 };
  const capJobs: [string, string, number, boolean][] = [
    ['f30k_caption_karpathy_train', 'train', sizes.f30kTrain, false], ['f30k_caption_karpathy_val', 'val', sizes.f30kVal, false],
    ['f30k_caption_karpathy_test', 'test', sizes.f30kTest, false],
    ['synth_caption_train', 'train', sizes.captionTrain, true], ['synth_caption_val', 'val', sizes.captionVal, true],
  ];
  for (const [name, split, n, negs] of capJobs) {
    const data = makeCaptionSplit(root.fork(`captions/${name}`), n, negs, capStats);
    const pngs = await renderScenes(data.map((d) => d.scene), imageSize, conc);
    const rows = data.map((d, i) => ({
      image: pngs[i], caption: d.captions, image_id: `${name}_${i}.png`, split, scene: sceneJson(d.scene),
      ...(negs ? { negatives: d.negatives } : {}),
    }));
    const cols = { ...(negs ? CAPTION_LAYOUT.columns : F30K_LAYOUT.columns), scene: 'string' as ColumnKind, ...(negs ? { negatives: 'list<string>' as ColumnKind } : {}) };
    await writeTable(path.join(out, `${name}.arrow`), cols, rows);
    note(name, rows.length, rows.reduce((s, r) => s + r.caption.length, 0));
    log(`${name}: ${rows.length} images`);
  }

  const report: SynthReport = {
    seed, imageSize, sizes, seconds: (performance.now() - t0) / 1000, tables,
    vqa: { answers: [...vocab.label2ans], questionsPerType: perType, maxAnswerShareWithinType: maxShare, ambiguousQuestions: ambiguous, droppedQuestions: dropped, testBaselines },
    nlvr2: { trueFraction: nStat ? nTrue / nStat : 0, statementTypePriorTest: priorN ? priorHits / priorN : 0 },
    captions: { hardNegatives: capStats.negatives, captionsWithoutNegative: capStats.noNegative },
  };
  writeFileAtomicSync(path.join(out, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}

/** Human-readable report lines. */
export function formatReport(r: SynthReport): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const b = r.vqa.testBaselines;
  const lines = [
    `synthetic benchmark: seed ${r.seed}, ${r.imageSize}x${r.imageSize} images, generated in ${r.seconds.toFixed(1)} s`,
    ...Object.entries(r.tables).map(([k, v]) => `  ${k.padEnd(30)} ${String(v.rows).padStart(6)} rows ${String(v.items).padStart(7)} items`),
    `VQA: ${r.vqa.answers.length} answers; ${r.vqa.ambiguousQuestions} ambiguous questions; ${r.vqa.droppedQuestions} dropped (no answer in vocabulary)`,
    `  largest answer share within a question type (train): ${Object.entries(r.vqa.maxAnswerShareWithinType).map(([t, s]) => `${t} ${pct(s)}`).join(', ')}`,
    `  VQA score on the test split:`,
    `    question-type answer prior (text only)          ${pct(b.questionTypePrior)}`,
    `    image-only 5-NN on 8x8 pixels (question ignored) ${pct(b.imageOnlyKnn)}`,
    `    majority answer                                  ${pct(b.majorityAnswer)}`,
    `    question type + image 5-NN (shallow combination) ${pct(b.typePlusImageKnn)}`,
    `    oracle reading the scene                         ${pct(b.oracle)} (100% except ambiguous questions)`,
    `NLVR2: ${pct(r.nlvr2.trueFraction)} true; statement-type prior on test1 ${pct(r.nlvr2.statementTypePriorTest)}`,
    `captions: ${r.captions.hardNegatives} verified hard negatives, ${r.captions.captionsWithoutNegative} captions without one`,
  ];
  return lines.join('\n');
}

const SIZE_FLAGS: Record<string, keyof SynthSizes> = {
  '--vqa-train': 'vqaTrain', '--vqa-val': 'vqaVal', '--vqa-test': 'vqaTest', '--questions-per-image': 'questionsPerImage',
  '--nlvr2-train': 'nlvr2Train', '--nlvr2-dev': 'nlvr2Dev', '--nlvr2-test': 'nlvr2Test', '--sentences-per-pair': 'sentencesPerPair',
  '--f30k-train': 'f30kTrain', '--f30k-val': 'f30kVal', '--f30k-test': 'f30kTest',
  '--caption-train': 'captionTrain', '--caption-val': 'captionVal', '--min-answer-count': 'minAnswerCount',
};

export const SYNTH_USAGE = `usage: aptune synth --out DIR [--seed N] [--size tiny|small|default|large] [--image-size 64]
       [--vqa-train N] [--vqa-val N] [--vqa-test N] [--questions-per-image N] [--nlvr2-train N] [--nlvr2-dev N]
       [--nlvr2-test N] [--sentences-per-pair N] [--f30k-train N] [--f30k-val N] [--f30k-test N]
       [--caption-train N] [--caption-val N] [--min-answer-count N] [--json]`;

/** `aptune synth ...`: parse argv (without the command word), generate, print the report. */
export async function runSynth(argv: string[]): Promise<void> {
  let out: string | undefined, seed = 0, preset: keyof typeof SIZE_PRESETS = 'default', imageSize = 64, json = false;
  const sizes: Partial<SynthSizes> = {};
  const int = (flag: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isInteger(n) || n < 0) throw new UsageError(`synth: ${flag} needs a non-negative integer, got ${v ?? '(nothing)'}\n${SYNTH_USAGE}`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') out = argv[++i];
    else if (a === '--seed') seed = int(a, argv[++i]);
    else if (a === '--image-size') imageSize = int(a, argv[++i]);
    else if (a === '--json') json = true;
    else if (a === '--size') {
      const v = argv[++i];
      if (!v || !(v in SIZE_PRESETS)) throw new UsageError(`synth: --size must be one of ${Object.keys(SIZE_PRESETS).join(', ')}, got ${v ?? '(nothing)'}`);
      preset = v as keyof typeof SIZE_PRESETS;
    } else if (a in SIZE_FLAGS) sizes[SIZE_FLAGS[a]] = int(a, argv[++i]);
    else if (a === '--help' || a === '-h') { console.log(SYNTH_USAGE); return; }
    else throw new UsageError(`synth: unknown argument ${a}\n${SYNTH_USAGE}`);
  }
  if (!out) throw new UsageError(`synth: --out DIR is required\n${SYNTH_USAGE}`);
  const report = await generateSynthetic({ out, seed, preset, sizes, imageSize, log: json ? undefined : (m) => console.log(m) });
  console.log(json ? JSON.stringify(report) : formatReport(report) + `\nwritten to ${out} (report.json)`);
}
