// Tokenizer entry point: the Tokenizer interface and loadTokenizer(path), which detects the format:
//   a directory holding tokenizer.json, or vocab.json + merges.txt (RoBERTa BPE), or vocab.txt (BERT WordPiece);
//   or one file: tokenizer.json (model.type WordPiece | BPE), vocab.txt, vocab.json / merges.txt (the other
//   file of the pair is taken from the same directory).
// Deliberately not here: downloading from the hub, per-task max lengths (the task layer picks 40 / 50).
// Invariants: every failure names the path and says why it is not a vocabulary.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { BertTokenizer } from './bert.ts';
import { RobertaTokenizer } from './roberta.ts';
import { checkTextFile } from './common.ts';

export type { Tokenizer, Encoding, EncodeOptions } from './common.ts';
export { BertTokenizer, buildWordPieceVocab, formatVocabTxt, BERT_SPECIALS } from './bert.ts';
export { RobertaTokenizer } from './roberta.ts';

function fromTokenizerJson(path: string): BertTokenizer | RobertaTokenizer {
  const text = checkTextFile(path, readFileSync(path), 'tokenizer.json');
  let json: unknown;
  try { json = JSON.parse(text); } catch (e) {
    throw new Error(`${path}: not a tokenizer.json: invalid JSON (${(e as Error).message})`);
  }
  const type = (json as { model?: { type?: unknown } } | null)?.model?.type;
  if (type === 'WordPiece') return BertTokenizer.fromTokenizerJson(json, path);
  if (type === 'BPE') return RobertaTokenizer.fromTokenizerJson(json, path);
  throw new Error(`${path}: not a supported tokenizer.json: model.type is ${JSON.stringify(type)} (expected "WordPiece" or "BPE")`);
}

export function loadTokenizer(path: string): BertTokenizer | RobertaTokenizer {
  if (!existsSync(path)) throw new Error(`loadTokenizer: ${path} does not exist`);
  if (statSync(path).isDirectory()) {
    const tj = join(path, 'tokenizer.json'), vj = join(path, 'vocab.json'), mt = join(path, 'merges.txt'), vt = join(path, 'vocab.txt');
    if (existsSync(tj)) return fromTokenizerJson(tj);
    if (existsSync(vj) && existsSync(mt)) return RobertaTokenizer.fromFiles(vj, mt);
    if (existsSync(vt)) return BertTokenizer.fromVocabTxt(vt);
    throw new Error(`loadTokenizer: ${path} holds no tokenizer.json, vocab.json + merges.txt, or vocab.txt`);
  }
  const name = basename(path), dir = dirname(path);
  if (name === 'merges.txt') {
    const vj = join(dir, 'vocab.json');
    if (!existsSync(vj)) throw new Error(`loadTokenizer: ${path} needs vocab.json next to it`);
    return RobertaTokenizer.fromFiles(vj, path);
  }
  if (name.endsWith('.json')) {
    const head = readFileSync(path).subarray(0, 1 << 16).toString('utf8');
    if (/"model"\s*:/.test(head) || name === 'tokenizer.json') return fromTokenizerJson(path);
    const mt = join(dir, 'merges.txt');
    if (!existsSync(mt)) throw new Error(`loadTokenizer: ${path} looks like a BPE vocab.json but ${mt} is missing`);
    return RobertaTokenizer.fromFiles(path, mt);
  }
  return BertTokenizer.fromVocabTxt(path);
}

/** Prefixed to every positive/eval ViLT text (spec §5.3, §8.4); 7 word pieces, no space after the colon. */
export const VILT_TEXT_PREFIX = 'Does the images satisfy the description:';

/** Text max_length of the reference per model and task (spec §5.3): ViLT 40; METER 50 (VQA, NLVR2), 40 (F30K). */
export function maxTextLength(model: 'vilt' | 'meter', task: 'vqa' | 'nlvr2' | 'f30k'): number {
  if (model === 'vilt') return 40;
  return task === 'f30k' ? 40 : 50;
}
