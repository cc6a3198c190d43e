// RoBERTa / GPT-2 byte-level BPE tokenizer (HF RobertaTokenizer semantics, METER, spec §5.3):
//   pre-tokenise with GPT-2's pattern ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+),
//   map each UTF-8 byte through GPT-2's bytes_to_unicode table (so a leading space becomes 'Ġ'), merge by BPE
//   ranks (lowest rank first, all occurrences left to right), look pieces up in the vocabulary (<unk> if absent).
//   Special tokens <s> = 0, <pad> = 1, </s> = 2 in roberta-base (read from the vocabulary, not assumed).
// Reads `vocab.json` + `merges.txt`, or an HF `tokenizer.json` with model.type "BPE".
// Deliberately not here: add_prefix_space (RoBERTa's default is off), sequence pairs, dropout-BPE.
// Invariants: tokenize() returns vocabulary-space strings (byte-encoded); the BPE cache only memoises a pure
// function of the word.
import { readFileSync } from 'node:fs';
import { checkTextFile, VocabTokenizer } from './common.ts';

/** GPT-2's reversible byte -> printable unicode character table. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const table: string[] = new Array(256);
  for (const b of bs) table[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (table[b] === undefined) table[b] = String.fromCodePoint(256 + n++);
  return table;
}

export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface RobertaOptions {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
  maskToken?: string;
}

const BYTE_ENCODER = bytesToUnicode();
const UTF8 = new TextEncoder();

export class RobertaTokenizer extends VocabTokenizer {
  readonly kind = 'roberta-bpe' as const;
  private readonly ranks: Map<string, number>;
  private readonly cache = new Map<string, string[]>();

  /** `merges` in rank order, each a pair of symbols. */
  constructor(vocab: Map<string, number>, merges: readonly (readonly [string, string])[], opts: RobertaOptions = {}, source = 'vocabulary') {
    super(vocab, {
      start: opts.bosToken ?? '<s>', end: opts.eosToken ?? '</s>', pad: opts.padToken ?? '<pad>',
      unk: opts.unkToken ?? '<unk>', mask: opts.maskToken ?? '<mask>',
    }, source, 'RoBERTa BPE vocabulary');
    this.ranks = new Map();
    merges.forEach(([a, b], i) => { const k = `${a} ${b}`; if (!this.ranks.has(k)) this.ranks.set(k, i); });
  }

  static fromFiles(vocabPath: string, mergesPath: string, opts?: RobertaOptions): RobertaTokenizer {
    const vtext = checkTextFile(vocabPath, readFileSync(vocabPath), 'BPE vocabulary (vocab.json)');
    let parsed: unknown;
    try { parsed = JSON.parse(vtext); } catch (e) {
      throw new Error(`${vocabPath}: not a BPE vocabulary: invalid JSON (${(e as Error).message})`);
    }
    const vocab = vocabFromObject(parsed, vocabPath);
    const mtext = checkTextFile(mergesPath, readFileSync(mergesPath), 'BPE merges file (merges.txt)');
    return new RobertaTokenizer(vocab, parseMergesTxt(mtext, mergesPath), opts, vocabPath);
  }

  /** From a parsed HF tokenizer.json whose model.type is "BPE". */
  static fromTokenizerJson(json: unknown, path = 'tokenizer.json'): RobertaTokenizer {
    const m = (json as { model?: { type?: string; vocab?: unknown; merges?: unknown; unk_token?: string | null } }).model;
    if (!m || m.type !== 'BPE') throw new Error(`${path}: not a BPE tokenizer.json (model.type is ${JSON.stringify(m?.type)}, expected "BPE")`);
    const vocab = vocabFromObject(m.vocab, `${path} model.vocab`);
    if (!Array.isArray(m.merges)) throw new Error(`${path}: model.merges must be an array`);
    const merges = m.merges.map((x, i): [string, string] => {
      if (typeof x === 'string') return splitMerge(x, `${path} model.merges[${i}]`);
      if (Array.isArray(x) && x.length === 2 && typeof x[0] === 'string' && typeof x[1] === 'string') return [x[0], x[1]];
      throw new Error(`${path}: model.merges[${i}] is neither "a b" nor ["a", "b"]`);
    });
    return new RobertaTokenizer(vocab, merges, m.unk_token ? { unkToken: m.unk_token } : {}, path);
  }

  /** BPE of one byte-encoded word. */
  bpe(word: string): string[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    let parts = Array.from(word);
    while (parts.length > 1) {
      let best = -1, bestRank = Infinity;
      for (let i = 0; i < parts.length - 1; i++) {
        const r = this.ranks.get(`${parts[i]} ${parts[i + 1]}`);
        if (r !== undefined && r < bestRank) { bestRank = r; best = i; }
      }
      if (best < 0) break;
      const a = parts[best], b = parts[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < parts.length;) {
        if (i < parts.length - 1 && parts[i] === a && parts[i + 1] === b) { merged.push(a + b); i += 2; }
        else merged.push(parts[i++]);
      }
      parts = merged;
    }
    if (this.cache.size < 100_000) this.cache.set(word, parts);
    return parts;
  }

  /** Pre-tokenised words of `text`, byte-encoded (' hello' -> 'Ġhello'). */
  preTokenize(text: string): string[] {
    const out: string[] = [];
    for (const m of text.matchAll(GPT2_PATTERN)) {
      let s = '';
      for (const byte of UTF8.encode(m[0])) s += BYTE_ENCODER[byte];
      out.push(s);
    }
    return out;
  }

  protected splitText(text: string): string[] {
    const out: string[] = [];
    for (const w of this.preTokenize(text)) for (const p of this.bpe(w)) out.push(p);
    return out;
  }
}

function vocabFromObject(obj: unknown, where: string): Map<string, number> {
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new Error(`${where}: not a BPE vocabulary: expected a JSON object {token: id}`);
  const vocab = new Map<string, number>();
  for (const [t, id] of Object.entries(obj)) {
    if (!Number.isInteger(id)) throw new Error(`${where}: not a BPE vocabulary: the id of '${t}' is ${JSON.stringify(id)}, not an integer`);
    vocab.set(t, id as number);
  }
  if (vocab.size === 0) throw new Error(`${where}: not a BPE vocabulary: no tokens`);
  return vocab;
}

function splitMerge(line: string, where: string): [string, string] {
  const parts = line.split(' ');
  if (parts.length !== 2 || !parts[0] || !parts[1]) throw new Error(`${where}: a merge must be two symbols separated by one space, got ${JSON.stringify(line)}`);
  return [parts[0], parts[1]];
}

/** Parses merges.txt: optional '#version' header, one "a b" pair per line, rank = order. */
export function parseMergesTxt(text: string, path = 'merges.txt'): [string, string][] {
  const merges: [string, string][] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line === '' || (i === 0 && line.startsWith('#version'))) return;
    merges.push(splitMerge(line, `${path} line ${i + 1}`));
  });
  return merges;
}
