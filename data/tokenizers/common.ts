// Shared tokenizer contract and helpers: the Tokenizer interface, encode options (HF semantics for one
// sequence: truncation keeps the first maxLength - 2 tokens, then [start] tokens [end], then padding), the
// split of raw text around special-token strings (HF keeps "[MASK]" / "<mask>" in text as one token), and
// VocabTokenizer, the vocabulary half both tokenizers share (special ids, id <-> token, tokenize around
// specials, encode); a subclass supplies only the splitting of plain text into vocabulary strings.
// Deliberately not here: any vocabulary format (bert.ts, roberta.ts), format detection (index.ts), pairs of
// sequences (no task here encodes text pairs).
// Invariants: ids, attentionMask and specialTokensMask have equal lengths; attention is 1 exactly on
// non-padding positions.

export interface Encoding {
  ids: number[];
  attentionMask: number[];
  specialTokensMask: number[];
  tokens: string[];
}

export interface EncodeOptions {
  /** Maximum length including the two special tokens. */
  maxLength?: number;
  /** Keep only the first maxLength tokens (default true when maxLength is given). */
  truncation?: boolean;
  /** 'max_length' pads to maxLength (ViLT positives); false leaves it unpadded (ViLT negatives). */
  padding?: 'max_length' | false;
}

export interface Tokenizer {
  readonly kind: 'bert-wordpiece' | 'roberta-bpe';
  readonly vocabSize: number;
  readonly padId: number;
  readonly startId: number; // [CLS] / <s>
  readonly endId: number; // [SEP] / </s>
  readonly unkId: number;
  readonly maskId: number | undefined;
  tokenize(text: string): string[];
  tokenToId(token: string): number;
  idToToken(id: number): string | undefined;
  encode(text: string, opts?: EncodeOptions): Encoding;
}

/** Splits text around occurrences of the given special-token strings (longest first). */
export function splitOnSpecial(text: string, specials: readonly string[]): { text: string; special: boolean }[] {
  const list = specials.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  const out: { text: string; special: boolean }[] = [];
  if (list.length === 0) return [{ text, special: false }];
  let start = 0, i = 0;
  while (i < text.length) {
    const hit = list.find((s) => text.startsWith(s, i));
    if (hit) {
      if (i > start) out.push({ text: text.slice(start, i), special: false });
      out.push({ text: hit, special: true });
      i += hit.length;
      start = i;
    } else i++;
  }
  if (start < text.length) out.push({ text: text.slice(start), special: false });
  return out;
}

/** Adds start/end tokens, truncates and pads (HF single-sequence behaviour). */
export function finishEncoding(tok: Tokenizer, tokens: string[], opts: EncodeOptions = {}, padToken: string): Encoding {
  const { maxLength } = opts;
  if (maxLength !== undefined && !(Number.isInteger(maxLength) && maxLength >= 2)) {
    throw new Error(`tokenizer encode: maxLength must be an integer >= 2 (room for the special tokens), got ${maxLength}`);
  }
  if (opts.padding === 'max_length' && maxLength === undefined) throw new Error("tokenizer encode: padding 'max_length' needs maxLength");
  let body = tokens;
  if (maxLength !== undefined && (opts.truncation ?? true) && body.length > maxLength - 2) body = body.slice(0, maxLength - 2);
  const ids = [tok.startId, ...body.map((t) => tok.tokenToId(t)), tok.endId];
  const outTokens = [tok.idToToken(tok.startId) ?? '', ...body, tok.idToToken(tok.endId) ?? ''];
  const specialTokensMask = ids.map((_, i) => (i === 0 || i === ids.length - 1 ? 1 : 0));
  const attentionMask = ids.map(() => 1);
  if (opts.padding === 'max_length' && maxLength !== undefined) {
    while (ids.length < maxLength) {
      ids.push(tok.padId); outTokens.push(padToken); attentionMask.push(0); specialTokensMask.push(1);
    }
  }
  return { ids, attentionMask, specialTokensMask, tokens: outTokens };
}

/** Throws a clear error if a text file does not look like text (binary, empty). */
export function checkTextFile(path: string, content: Buffer, what: string): string {
  if (content.length === 0) throw new Error(`${path}: not a ${what}: the file is empty`);
  if (content.includes(0)) throw new Error(`${path}: not a ${what}: the file contains binary data (NUL bytes)`);
  return content.toString('utf8');
}

/** The special-token strings of a vocabulary, by role. */
export interface SpecialTokens {
  start: string; // [CLS] / <s>
  end: string; // [SEP] / </s>
  pad: string;
  unk: string;
  mask: string; // optional in the vocabulary
}

/**
 * A tokenizer over a token -> id vocabulary: special ids looked up (start, end, pad and unk are required; a missing
 * one is an error naming `source` and `what` the file should have been), id <-> token, special-token strings in
 * the text kept whole, encode with HF single-sequence semantics. Subclasses implement `splitText`.
 */
export abstract class VocabTokenizer implements Tokenizer {
  abstract readonly kind: Tokenizer['kind'];
  readonly vocab: Map<string, number>;
  readonly padId: number;
  readonly startId: number;
  readonly endId: number;
  readonly unkId: number;
  readonly maskId: number | undefined;
  protected readonly padToken: string;
  private readonly inv: string[] = [];
  private readonly specials: string[];

  constructor(vocab: Map<string, number>, tokens: SpecialTokens, source: string, what: string) {
    this.vocab = vocab;
    const missing = (['unk', 'start', 'end', 'pad'] as const).filter((r) => !vocab.has(tokens[r]));
    if (missing.length) {
      throw new Error(`${source}: not a ${what}: ${missing.map((r) => `special token '${tokens[r]}' (${r}) is missing`).join('; ')}`);
    }
    this.startId = vocab.get(tokens.start)!;
    this.endId = vocab.get(tokens.end)!;
    this.padId = vocab.get(tokens.pad)!;
    this.unkId = vocab.get(tokens.unk)!;
    this.maskId = vocab.get(tokens.mask);
    this.padToken = tokens.pad;
    for (const [t, i] of vocab) this.inv[i] = t;
    this.specials = [tokens.start, tokens.end, tokens.pad, tokens.unk, tokens.mask].filter((t) => vocab.has(t));
  }

  /** Vocabulary strings of a text holding no special-token string. */
  protected abstract splitText(text: string): string[];

  get vocabSize(): number {
    return this.inv.length;
  }

  tokenToId(token: string): number {
    return this.vocab.get(token) ?? this.unkId;
  }

  idToToken(id: number): string | undefined {
    return this.inv[id];
  }

  tokenize(text: string): string[] {
    const out: string[] = [];
    for (const part of splitOnSpecial(text, this.specials)) {
      if (part.special) out.push(part.text);
      else for (const t of this.splitText(part.text)) out.push(t);
    }
    return out;
  }

  encode(text: string, opts?: EncodeOptions): Encoding {
    return finishEncoding(this, this.tokenize(text), opts, this.padToken);
  }
}
