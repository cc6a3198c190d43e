// BERT WordPiece tokenizer (HF BertTokenizer semantics, bert-base-uncased for ViLT, spec §5.3):
//   basic tokenizer: drop NUL / U+FFFD / control chars, map whitespace to ' ', put spaces around CJK ideographs,
//   NFC, split on whitespace, lower-case and strip accents (NFD, drop Mn) when uncased, split punctuation
//   (ASCII 33-47, 58-64, 91-96, 123-126 and every Unicode P* category), then greedy longest-match-first
//   WordPiece with '##' continuations; a word longer than maxInputCharsPerWord (100) code points, or with no
//   full cover, becomes [UNK]. Special-token strings in the text ([MASK], ...) are kept whole.
// Reads HF `vocab.txt` (line i = id i) or `tokenizer.json` (model.type "WordPiece"); builds a small covering
// vocabulary from a text corpus (buildWordPieceVocab) and formats any dense vocabulary as vocab.txt text.
// Deliberately not here: sequence pairs, decoding back to text beyond `idToToken`, cased-model options other
// than `lowercase` / `stripAccents`.
// Invariants: token ids are exactly the vocab line numbers; tokenize() never returns an empty string.
import { readFileSync } from 'node:fs';
import { checkTextFile, VocabTokenizer } from './common.ts';

export interface BertOptions {
  lowercase?: boolean;
  /** Defaults to `lowercase`, like HF. */
  stripAccents?: boolean;
  handleChineseChars?: boolean;
  cleanText?: boolean;
  maxInputCharsPerWord?: number;
  continuingSubwordPrefix?: string;
  unkToken?: string;
  clsToken?: string;
  sepToken?: string;
  padToken?: string;
  maskToken?: string;
}

const RE_WS = /^[\t\n\r ]$|^\p{Zs}$/u;
const RE_CONTROL = /^\p{C}$/u;
const RE_PUNCT = /^\p{P}$/u;
const RE_MN = /\p{Mn}/gu;

export function isWhitespace(ch: string): boolean {
  return RE_WS.test(ch);
}

export function isControl(ch: string): boolean {
  if (ch === '\t' || ch === '\n' || ch === '\r') return false;
  return RE_CONTROL.test(ch);
}

export function isPunctuation(ch: string): boolean {
  const cp = ch.codePointAt(0)!;
  if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
  return RE_PUNCT.test(ch);
}

export function isChineseChar(cp: number): boolean {
  return (cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) || (cp >= 0x20000 && cp <= 0x2a6df) ||
    (cp >= 0x2a700 && cp <= 0x2b73f) || (cp >= 0x2b740 && cp <= 0x2b81f) || (cp >= 0x2b820 && cp <= 0x2ceaf) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0x2f800 && cp <= 0x2fa1f);
}

/** Parses HF vocab.txt: one token per line, id = line number. */
export function parseVocabTxt(text: string, path = 'vocab.txt'): Map<string, number> {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  const vocab = new Map<string, number>();
  lines.forEach((line, i) => vocab.set(line.endsWith('\r') ? line.slice(0, -1) : line, i));
  if (vocab.size === 0) throw new Error(`${path}: not a WordPiece vocabulary: no tokens`);
  return vocab;
}

/** Special tokens of a vocabulary built by buildWordPieceVocab, at ids 0-4 in this order. */
export const BERT_SPECIALS = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'] as const;

/**
 * A small WordPiece vocabulary covering `texts` (e.g. the synthetic benchmark, so a small model needs no
 * downloaded vocab): BERT_SPECIALS at ids 0-4, then every basic token (words and punctuation, as the basic
 * tokenizer with `opts` splits them) seen at least `minCount` times, most frequent first (ties: first appearance),
 * then every character seen and its '##' form, so a word of seen characters always has a cover (no [UNK]).
 * A pure function of (texts, options). Note: [CLS] is id 2 here, not bert-base's 101.
 */
export function buildWordPieceVocab(texts: Iterable<string>, opts: BertOptions & { minCount?: number } = {}): Map<string, number> {
  const minCount = opts.minCount ?? 1;
  if (!(Number.isInteger(minCount) && minCount >= 1)) throw new Error(`buildWordPieceVocab: minCount must be an integer >= 1, got ${minCount}`);
  const basic = new BertTokenizer(new Map(BERT_SPECIALS.map((t, i) => [t, i])), opts, 'buildWordPieceVocab');
  const counts = new Map<string, number>(); // insertion order = first appearance
  const chars = new Set<string>();
  for (const text of texts) {
    for (const w of basic.basicTokenize(text)) {
      counts.set(w, (counts.get(w) ?? 0) + 1);
      for (const ch of w) chars.add(ch);
    }
  }
  const words = [...counts].filter(([, c]) => c >= minCount).sort((a, b) => b[1] - a[1]).map(([w]) => w);
  const vocab = new Map<string, number>();
  for (const t of [...BERT_SPECIALS, ...words, ...chars, ...[...chars].map((c) => '##' + c)]) if (!vocab.has(t)) vocab.set(t, vocab.size);
  return vocab;
}

/** HF vocab.txt text of a vocabulary whose ids are exactly 0..size-1 (line i = token of id i). */
export function formatVocabTxt(vocab: ReadonlyMap<string, number>): string {
  const lines: string[] = new Array(vocab.size);
  for (const [t, id] of vocab) {
    if (!(Number.isInteger(id) && id >= 0 && id < vocab.size) || lines[id] !== undefined) {
      throw new Error(`formatVocabTxt: ids must be exactly 0..${vocab.size - 1}; '${t}' has id ${id}`);
    }
    if (/[\r\n]/.test(t)) throw new Error(`formatVocabTxt: token ${JSON.stringify(t)} contains a line break`);
    lines[id] = t;
  }
  return lines.join('\n') + '\n';
}

export class BertTokenizer extends VocabTokenizer {
  readonly kind = 'bert-wordpiece' as const;
  private readonly o: Required<BertOptions>;

  constructor(vocab: Map<string, number>, opts: BertOptions = {}, source = 'vocabulary') {
    const lowercase = opts.lowercase ?? true;
    const o: Required<BertOptions> = {
      lowercase, stripAccents: opts.stripAccents ?? lowercase, handleChineseChars: opts.handleChineseChars ?? true,
      cleanText: opts.cleanText ?? true, maxInputCharsPerWord: opts.maxInputCharsPerWord ?? 100,
      continuingSubwordPrefix: opts.continuingSubwordPrefix ?? '##', unkToken: opts.unkToken ?? '[UNK]',
      clsToken: opts.clsToken ?? '[CLS]', sepToken: opts.sepToken ?? '[SEP]', padToken: opts.padToken ?? '[PAD]',
      maskToken: opts.maskToken ?? '[MASK]',
    };
    super(vocab, { start: o.clsToken, end: o.sepToken, pad: o.padToken, unk: o.unkToken, mask: o.maskToken }, source, 'BERT WordPiece vocabulary');
    this.o = o;
  }

  static fromVocabTxt(path: string, opts?: BertOptions): BertTokenizer {
    const text = checkTextFile(path, readFileSync(path), 'WordPiece vocabulary (vocab.txt)');
    return new BertTokenizer(parseVocabTxt(text, path), opts, path);
  }

  /** From a parsed HF tokenizer.json whose model.type is "WordPiece". */
  static fromTokenizerJson(json: unknown, path = 'tokenizer.json'): BertTokenizer {
    const j = json as { model?: { type?: string; vocab?: Record<string, number>; unk_token?: string; continuing_subword_prefix?: string; max_input_chars_per_word?: number }; normalizer?: { type?: string; lowercase?: boolean; strip_accents?: boolean | null; handle_chinese_chars?: boolean; clean_text?: boolean } | null };
    const m = j.model;
    if (!m || m.type !== 'WordPiece' || typeof m.vocab !== 'object' || m.vocab === null) {
      throw new Error(`${path}: not a WordPiece tokenizer.json (model.type is ${JSON.stringify(m?.type)}, expected "WordPiece" with a vocab)`);
    }
    const vocab = new Map<string, number>();
    for (const [t, id] of Object.entries(m.vocab)) {
      if (!Number.isInteger(id)) throw new Error(`${path}: model.vocab['${t}'] is not an integer id`);
      vocab.set(t, id);
    }
    const n = j.normalizer && j.normalizer.type === 'BertNormalizer' ? j.normalizer : undefined;
    return new BertTokenizer(vocab, {
      lowercase: n?.lowercase ?? true, stripAccents: n?.strip_accents ?? undefined,
      handleChineseChars: n?.handle_chinese_chars ?? true, cleanText: n?.clean_text ?? true,
      unkToken: m.unk_token ?? '[UNK]', continuingSubwordPrefix: m.continuing_subword_prefix ?? '##',
      maxInputCharsPerWord: m.max_input_chars_per_word ?? 100,
    }, path);
  }

  /** The basic tokenizer: cleaned, split words and punctuation, before WordPiece. */
  basicTokenize(text: string): string[] {
    const o = this.o;
    let s = '';
    for (const ch of text) {
      const cp = ch.codePointAt(0)!;
      if (o.cleanText) {
        if (cp === 0 || cp === 0xfffd || isControl(ch)) continue;
        if (isWhitespace(ch)) { s += ' '; continue; }
      }
      if (o.handleChineseChars && isChineseChar(cp)) { s += ` ${ch} `; continue; }
      s += ch;
    }
    s = s.normalize('NFC');
    const out: string[] = [];
    for (let word of s.split(/[\t\n\r ]+|\p{Zs}+/u)) {
      if (!word) continue;
      if (o.lowercase) word = word.toLowerCase();
      if (o.stripAccents) word = word.normalize('NFD').replace(RE_MN, '');
      let cur = '';
      for (const ch of word) {
        if (isPunctuation(ch)) {
          if (cur) { out.push(cur); cur = ''; }
          out.push(ch);
        } else cur += ch;
      }
      if (cur) out.push(cur);
    }
    return out;
  }

  /** Greedy longest-match-first WordPiece of one basic token. */
  wordpiece(word: string): string[] {
    const chars = Array.from(word);
    if (chars.length > this.o.maxInputCharsPerWord) return [this.o.unkToken];
    const pieces: string[] = [];
    let start = 0;
    while (start < chars.length) {
      let end = chars.length, found: string | null = null;
      while (start < end) {
        let sub = chars.slice(start, end).join('');
        if (start > 0) sub = this.o.continuingSubwordPrefix + sub;
        if (this.vocab.has(sub)) { found = sub; break; }
        end--;
      }
      if (found === null) return [this.o.unkToken];
      pieces.push(found);
      start = end;
    }
    return pieces;
  }

  protected splitText(text: string): string[] {
    const out: string[] = [];
    for (const w of this.basicTokenize(text)) for (const p of this.wordpiece(w)) out.push(p);
    return out;
  }
}
