// VQA answers and labels (apt-spec §4.1, §5.1): the official VQA answer normaliser as ViLT's write_vqa applies it,
// the answer vocabulary (count >= 9, ids in first-appearance order), soft scores 0.3/0.6/0.9/1.0 from raw-answer
// counts, dense targets, the training "VQA score", the official 10-annotator accuracy, and NLVR2 True/False labels.
// Does not: tokenise questions (data/tokenizers/), or touch the engine (plain arrays in, plain numbers out).
// Invariants (all reproduce the reference, quirks included):
//   * normalizeAnswer applies punctuation, period, number-word, article and contraction rules in the official
//     order; the period rule removes at most 32 periods (the official code passes re.UNICODE as the `count`);
//     contraction keys with a capital I never match (they are looked up after lower-casing);
//   * the human answers are counted WITHOUT normalisation when labels are assigned (countRawAnswers);
//   * a vocabulary's ids follow the first appearance of each kept answer in the input order.

const CONTRACTIONS: Record<string, string> = {
  aint: "ain't", arent: "aren't", cant: "can't", couldve: "could've", couldnt: "couldn't",
  "couldn'tve": "couldn't've", "couldnt've": "couldn't've", didnt: "didn't", doesnt: "doesn't", dont: "don't",
  hadnt: "hadn't", "hadnt've": "hadn't've", "hadn'tve": "hadn't've", hasnt: "hasn't", havent: "haven't",
  hed: "he'd", "hed've": "he'd've", "he'dve": "he'd've", hes: "he's", howd: "how'd", howll: "how'll",
  hows: "how's", "Id've": "I'd've", "I'dve": "I'd've", Im: "I'm", Ive: "I've", isnt: "isn't", itd: "it'd",
  "itd've": "it'd've", "it'dve": "it'd've", itll: "it'll", "let's": "let's", maam: "ma'am", mightnt: "mightn't",
  "mightnt've": "mightn't've", "mightn'tve": "mightn't've", mightve: "might've", mustnt: "mustn't",
  mustve: "must've", neednt: "needn't", notve: "not've", oclock: "o'clock", oughtnt: "oughtn't",
  "ow's'at": "'ow's'at", "'ows'at": "'ow's'at", "'ow'sat": "'ow's'at", shant: "shan't", "shed've": "she'd've",
  "she'dve": "she'd've", "she's": "she's", shouldve: "should've", shouldnt: "shouldn't",
  "shouldnt've": "shouldn't've", "shouldn'tve": "shouldn't've", "somebody'd": 'somebodyd',
  "somebodyd've": "somebody'd've", "somebody'dve": "somebody'd've", somebodyll: "somebody'll",
  somebodys: "somebody's", someoned: "someone'd", "someoned've": "someone'd've", "someone'dve": "someone'd've",
  someonell: "someone'll", someones: "someone's", somethingd: "something'd", "somethingd've": "something'd've",
  "something'dve": "something'd've", somethingll: "something'll", thats: "that's", thered: "there'd",
  "thered've": "there'd've", "there'dve": "there'd've", therere: "there're", theres: "there's", theyd: "they'd",
  "theyd've": "they'd've", "they'dve": "they'd've", theyll: "they'll", theyre: "they're", theyve: "they've",
  twas: "'twas", wasnt: "wasn't", "wed've": "we'd've", "we'dve": "we'd've", weve: "we've", werent: "weren't",
  whatll: "what'll", whatre: "what're", whats: "what's", whatve: "what've", whens: "when's", whered: "where'd",
  wheres: "where's", whereve: "where've", whod: "who'd", "whod've": "who'd've", "who'dve": "who'd've",
  wholl: "who'll", whos: "who's", whove: "who've", whyll: "why'll", whyre: "why're", whys: "why's",
  wont: "won't", wouldve: "would've", wouldnt: "wouldn't", "wouldnt've": "wouldn't've",
  "wouldn'tve": "wouldn't've", yall: "y'all", "yall'll": "y'all'll", "y'allll": "y'all'll",
  "yall'd've": "y'all'd've", "y'alld've": "y'all'd've", "y'all'dve": "y'all'd've", youd: "you'd",
  "youd've": "you'd've", "you'dve": "you'd've", youll: "you'll", youre: "you're", youve: "you've",
};
const NUMBER_WORDS: Record<string, string> = {
  none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8',
  nine: '9', ten: '10',
};
const ARTICLES = new Set(['a', 'an', 'the']);
const PUNCT = [';', '/', '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@', '`', ',', '?', '!'];
const COMMA_BETWEEN_DIGITS = /(\d)(,)(\d)/;

/** Python's str.split() with no argument: split on runs of whitespace, no empty pieces. */
function pySplit(s: string): string[] {
  return s.split(/[\s\u001c-\u001f\u0085]+/u).filter((w) => w.length > 0);
}

/** Remove periods not followed by a digit, at most `count` of them (left to right). */
function stripPeriods(s: string, count: number): string {
  let out = '';
  let removed = 0;
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '.' && removed < count && !(i + 1 < s.length && s[i + 1] >= '0' && s[i + 1] <= '9')) { removed++; continue; }
    out += ch;
  }
  return out;
}

/** The official evaluation's punctuation step (processPunctuation). */
export function processPunctuation(text: string): string {
  let t = text;
  const commaDigits = COMMA_BETWEEN_DIGITS.test(text);
  for (const p of PUNCT) {
    if (text.includes(p + ' ') || text.includes(' ' + p) || commaDigits) t = t.split(p).join('');
    else t = t.split(p).join(' ');
  }
  return stripPeriods(t, 32);
}

/** The official evaluation's number-word / article / contraction step (processDigitArticle). */
export function processDigitArticle(text: string): string {
  const words: string[] = [];
  for (let w of pySplit(text.toLowerCase())) {
    w = Object.prototype.hasOwnProperty.call(NUMBER_WORDS, w) ? NUMBER_WORDS[w] : w;
    if (!ARTICLES.has(w)) words.push(w);
  }
  for (let i = 0; i < words.length; i++) {
    if (Object.prototype.hasOwnProperty.call(CONTRACTIONS, words[i])) words[i] = CONTRACTIONS[words[i]];
  }
  return words.join(' ');
}

/** The answer normalisation ViLT's write_vqa applies (glossary.normalize_word): both official steps, then commas removed. */
export function normalizeAnswer(answer: string): string {
  return processDigitArticle(processPunctuation(answer)).split(',').join('');
}

// ---------------------------------------------------------------------------------------------------------------
// Vocabulary, labels, scores

export interface AnswerVocab {
  /** answer string -> class id */
  readonly ans2label: ReadonlyMap<string, number>;
  /** class id -> answer string */
  readonly label2ans: readonly string[];
}

/**
 * Build the answer vocabulary from `multiple_choice_answer` strings (train then val, in file order): normalise
 * each, keep answers seen at least `minCount` times (default 9), ids in order of first appearance.
 */
export function buildAnswerVocab(multipleChoiceAnswers: Iterable<string>, minCount = 9): AnswerVocab {
  const counts = new Map<string, number>(); // Map keeps insertion (= first appearance) order
  for (const a of multipleChoiceAnswers) {
    const n = normalizeAnswer(a);
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  const label2ans: string[] = [];
  for (const [a, c] of counts) if (c >= minCount) label2ans.push(a);
  return { ans2label: new Map(label2ans.map((a, i) => [a, i])), label2ans };
}

/** Soft score for an answer given by `count` of the annotators: 0, 0.3, 0.6, 0.9, 1.0 for 0, 1, 2, 3, >= 4. */
export function softScore(count: number): number {
  if (count <= 0) return 0;
  if (count === 1) return 0.3;
  if (count === 2) return 0.6;
  if (count === 3) return 0.9;
  return 1.0;
}

/** Count the raw human answers (NOT normalised, as the reference does), in first-appearance order. */
export function countRawAnswers(rawAnswers: readonly string[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const a of rawAnswers) m.set(a, (m.get(a) ?? 0) + 1);
  return m;
}

/** Labels and soft scores of one question from its raw human answers; answers outside the vocabulary are dropped. */
export function labelsAndScores(rawAnswers: readonly string[], vocab: AnswerVocab): { labels: number[]; scores: number[] } {
  const labels: number[] = [];
  const scores: number[] = [];
  for (const [a, c] of countRawAnswers(rawAnswers)) {
    const id = vocab.ans2label.get(a);
    if (id === undefined) continue;
    labels.push(id);
    scores.push(softScore(c));
  }
  return { labels, scores };
}

/** Dense target row for BCE training: zeros except target[label] = score.  // [numClasses] */
export function targetVector(labels: readonly number[], scores: readonly number[], numClasses: number, out?: Float32Array): Float32Array {
  if (labels.length !== scores.length) throw new Error(`targetVector: ${labels.length} labels but ${scores.length} scores`);
  const t = out ?? new Float32Array(numClasses);
  if (t.length !== numClasses) throw new Error(`targetVector: output has ${t.length} entries, expected ${numClasses}`);
  t.fill(0);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < 0 || l >= numClasses) throw new Error(`targetVector: label ${l} outside [0, ${numClasses})`);
    t[l] = scores[i];
  }
  return t;
}

/** Dense targets for a batch.  // [B, numClasses] row-major */
export function targetMatrix(labels: readonly (readonly number[])[], scores: readonly (readonly number[])[], numClasses: number): Float32Array {
  const out = new Float32Array(labels.length * numClasses);
  for (let b = 0; b < labels.length; b++) targetVector(labels[b], scores[b], numClasses, out.subarray(b * numClasses, (b + 1) * numClasses));
  return out;
}

/** Row-wise argmax of logits.  logits: [B, C] row-major -> [B] */
export function argmaxRows(logits: ArrayLike<number>, numClasses: number): Int32Array {
  if (logits.length % numClasses !== 0) throw new Error(`argmaxRows: ${logits.length} values is not a multiple of ${numClasses} classes`);
  const B = logits.length / numClasses;
  const out = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    let best = 0, bv = -Infinity;
    for (let c = 0; c < numClasses; c++) { const v = logits[b * numClasses + c]; if (v > bv) { bv = v; best = c; } }
    out[b] = best;
  }
  return out;
}

/**
 * The training-time "VQA score" of the reference: for each sample the soft score its predicted class has in the
 * target (0 if absent); returns the sum and count so callers can accumulate over batches.
 */
export function vqaScore(predicted: ArrayLike<number>, labels: readonly (readonly number[])[], scores: readonly (readonly number[])[]): { sum: number; count: number } {
  if (predicted.length !== labels.length || labels.length !== scores.length) {
    throw new Error(`vqaScore: ${predicted.length} predictions, ${labels.length} label lists, ${scores.length} score lists`);
  }
  let sum = 0;
  for (let i = 0; i < predicted.length; i++) {
    const k = labels[i].indexOf(predicted[i]);
    if (k >= 0) sum += scores[i][k];
  }
  return { sum, count: predicted.length };
}

/**
 * Official VQA accuracy of one predicted answer against the human answers, as the evaluation server computes it:
 * answers are trimmed; only when the humans disagree are the human answers passed through processPunctuation and
 * the prediction through processPunctuation + processDigitArticle (when they all agree, matching is exact); then
 * the mean over the leave-one-out subsets of min(1, matches / 3).
 */
export function officialVqaAccuracy(predicted: string, humanAnswers: readonly string[]): number {
  if (humanAnswers.length === 0) return 0;
  const clean = (a: string) => a.replace(/\n/g, ' ').replace(/\t/g, ' ').trim();
  let p = clean(predicted);
  let h = humanAnswers.map(clean);
  if (new Set(h).size > 1) {
    h = h.map(processPunctuation);
    p = processDigitArticle(processPunctuation(p));
  }
  let acc = 0;
  for (let i = 0; i < h.length; i++) {
    let m = 0;
    for (let j = 0; j < h.length; j++) if (j !== i && h[j] === p) m++;
    acc += Math.min(1, m / 3);
  }
  return acc / h.length;
}

/** NLVR2 label: "True" -> 1, "False" -> 0; anything else is an error naming where it came from. */
export function nlvr2Label(answer: string, where = 'NLVR2 answer'): 0 | 1 {
  if (answer === 'True') return 1;
  if (answer === 'False') return 0;
  throw new Error(`${where}: expected "True" or "False", got ${JSON.stringify(answer)}`);
}

/**
 * Answer vocabulary recovered from tables, like the reference VQA datamodule: pairs (answer, label) from the
 * `answers` / `answer_labels` columns of the train and val tables; num classes = max label + 1; unknown ids map to
 * "unknown".
 */
export function vocabFromLabelledAnswers(pairs: Iterable<[string, number]>): { numClasses: number; id2answer: (id: number) => string; answer2id: Map<string, number> } {
  const answer2id = new Map<string, number>();
  for (const [a, l] of pairs) answer2id.set(a, l);
  let max = -1;
  for (const v of answer2id.values()) max = Math.max(max, v);
  const id2 = new Map<number, string>();
  for (const [a, l] of [...answer2id.entries()].sort((x, y) => x[1] - y[1])) id2.set(l, a);
  return { numClasses: max + 1, id2answer: (id) => id2.get(id) ?? 'unknown', answer2id };
}
