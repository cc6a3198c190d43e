// BERT WordPiece tokenizer (HF BertTokenizer semantics, bert-base-uncased for ViLT, spec §5.3):
//   basic tokenizer: drop NUL / U+FFFD / control chars, map whitespace to ' ', put spaces around CJK ideographs,
//   NFC, split on whitespace, lower-case and strip accents (NFD, drop Mn) when uncased, split punctuation
//   (ASCII 33-47, 58-64, 91-96, 123-126 and every Unicode P* category), then greedy longest-match-first
//   WordPiece with '##' continuations; a word longer than maxInputCharsPerWord (100) code points, or with no
//   full cover, becomes [UNK]. Special-token strings in the text ([MASK], ...) are kept whole.
// Reads HF `vocab.txt` (line i = id i) or `tokenizer.json` (model.type "WordPiece").
// Deliberately not here: sequence pairs, decoding back to text beyond `idToToken`, cased-model options other
// than `lowercase` / `stripAccents`.
// Invariants: token ids are exactly the vocab line numbers; tokenize() never returns an empty string.
import { readFileSync } from 'node:fs';
import { checkTextFile, finishEncoding, splitOnSpecial, type EncodeOptions, type Encoding, type Tokenizer } from './common.ts';

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

export class BertTokenizer implements Tokenizer {
  readonly kind = 'bert-wordpiece' as const;
  readonly vocab: Map<string, number>;
  private readonly inv: string[];
  private readonly o: Required<BertOptions>;
  readonly padId: number;
  readonly startId: number;
  readonly endId: number;
  readonly unkId: number;
  readonly maskId: number | undefined;
  private readonly specials: string[];

  constructor(vocab: Map<string, number>, opts: BertOptions = {}, source = 'vocabulary') {
    const lowercase = opts.lowercase ?? true;
    this.o = {
      lowercase, stripAccents: opts.stripAccents ?? lowercase, handleChineseChars: opts.handleChineseChars ?? true,
      cleanText: opts.cleanText ?? true, maxInputCharsPerWord: opts.maxInputCharsPerWord ?? 100,
      continuingSubwordPrefix: opts.continuingSubwordPrefix ?? '##', unkToken: opts.unkToken ?? '[UNK]',
      clsToken: opts.clsToken ?? '[CLS]', sepToken: opts.sepToken ?? '[SEP]', padToken: opts.padToken ?? '[PAD]',
      maskToken: opts.maskToken ?? '[MASK]',
    };
    this.vocab = vocab;
    const need = (name: keyof BertOptions & `${string}Token`): number => {
      const tok = this.o[name] as string;
      const id = vocab.get(tok);
      if (id === undefined) throw new Error(`${source}: not a BERT WordPiece vocabulary: special token '${tok}' (${name}) is missing`);
      return id;
    };
    this.unkId = need('unkToken');
    this.startId = need('clsToken');
    this.endId = need('sepToken');
    this.padId = need('padToken');
    this.maskId = vocab.get(this.o.maskToken);
    this.inv = [];
    for (const [t, i] of vocab) this.inv[i] = t;
    this.specials = [this.o.unkToken, this.o.clsToken, this.o.sepToken, this.o.padToken, this.o.maskToken].filter((t) => vocab.has(t));
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

  get vocabSize(): number {
    return this.inv.length;
  }

  tokenToId(token: string): number {
    return this.vocab.get(token) ?? this.unkId;
  }

  idToToken(id: number): string | undefined {
    return this.inv[id];
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

  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const part of splitOnSpecial(text, this.specials)) {
      if (part.special) { out.push(part.text); continue; }
      for (const w of this.basicTokenize(part.text)) out.push(...this.wordpiece(w));
    }
    return out;
  }

  encode(text: string, opts?: EncodeOptions): Encoding {
    return finishEncoding(this, this.tokenize(text), opts, this.o.padToken);
  }
}
