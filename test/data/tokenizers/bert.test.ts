// BERT WordPiece on a hand-made vocabulary (test/fixtures/tokenizers/bert): every expected output below was
// worked out by hand from HF BertTokenizer's rules, not produced by this code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BertTokenizer, isPunctuation, isControl, isWhitespace, buildWordPieceVocab, formatVocabTxt } from '../../../data/tokenizers/bert.ts';
import { loadTokenizer, VILT_TEXT_PREFIX, maxTextLength } from '../../../data/tokenizers/index.ts';

const dir = new URL('../../fixtures/tokenizers/bert/', import.meta.url).pathname;
const tok = BertTokenizer.fromVocabTxt(join(dir, 'vocab.txt'));

test('special ids come from the vocabulary lines', () => {
  assert.equal([tok.padId, tok.unkId, tok.startId, tok.endId, tok.maskId], [0, 1, 2, 3, 4]);
  assert.is(tok.vocabSize, 44);
  assert.is(tok.tokenToId('cat'), 36);
  assert.is(tok.tokenToId('zebra'), 1);
});

test('ViLT prompt prefix is 7 word pieces', () => {
  assert.equal(tok.tokenize(VILT_TEXT_PREFIX),
    ['does', 'the', 'images', 'satisfy', 'the', 'description', ':']);
  assert.equal([maxTextLength('vilt', 'vqa'), maxTextLength('meter', 'nlvr2'), maxTextLength('meter', 'f30k')], [40, 50, 40]);
  // no space after the colon: the colon is split off as punctuation
  assert.equal(tok.tokenize('Does the images satisfy the description:what color is the cat?').slice(6),
    [':', 'what', 'color', 'is', 'the', 'cat', '?']);
});

test('lower-casing and accent stripping', () => {
  assert.equal(tok.tokenize('Café RÉSUMÉ naïve'), ['cafe', 'resume', 'naive']);
  // decomposed input (e + combining acute) gives the same
  assert.equal(tok.tokenize('Cafe\u0301'), ['cafe']);
});

test('punctuation splitting, ASCII and Unicode', () => {
  assert.equal(tok.tokenize("cat's dog!"), ['cat', "'", '[UNK]', 'dog', '!']); // 's' exists only as '##s'
  assert.equal(tok.tokenize('cat$dog'), ['cat', '[UNK]', 'dog']); // '$' is ASCII 36: punctuation
  assert.equal(tok.tokenize('cat\u2014dog'), ['cat', '[UNK]', 'dog']); // em dash (Pd)
  assert.equal(tok.tokenize('£12'), ['[UNK]']); // '£' is Sc, not punctuation: one word '£12', no full cover
  assert.ok(isPunctuation('`') && isPunctuation('~') && isPunctuation('¿') && !isPunctuation('£') && !isPunctuation('a'));
});

test('greedy longest-match-first with ## continuations', () => {
  assert.equal(tok.tokenize('unaffable'), ['un', '##aff', '##able']);
  assert.equal(tok.tokenize('playing played plays'), ['play', '##ing', 'play', '##ed', 'play', '##s']);
  assert.equal(tok.tokenize('images image'), ['images', 'image']);
});

test('digits: longest prefix first, and no partial cover', () => {
  assert.equal(tok.tokenize('1245'), ['12', '##4', '##5']);
  assert.equal(tok.tokenize('123'), ['[UNK]']); // '12' matches but '##3' is absent: the whole word is [UNK]
  assert.equal(tok.tokenize('3 1'), ['3', '1']);
});

test('long words: 100 characters are tokenised, 101 become [UNK]', () => {
  const w100 = tok.tokenize('a'.repeat(100));
  assert.is(w100.length, 100);
  assert.equal(w100.slice(0, 2), ['a', '##a']);
  assert.equal(tok.tokenize('a'.repeat(101)), ['[UNK]']);
});

test('CJK characters are split one by one', () => {
  assert.equal(tok.tokenize('中国的cat'), ['中', '国', '的', 'cat']);
});

test('whitespace and control cleaning, unknown words', () => {
  assert.equal(tok.tokenize(' cat\u0000\tdog\u200b\u00a0zebra\r\n'), ['cat', 'dog', '[UNK]']);
  assert.ok(isWhitespace('\u00a0') && isWhitespace('\t') && !isWhitespace('\u200b'));
  assert.ok(isControl('\u200b') && !isControl('\n'));
  assert.equal(tok.tokenize('the [MASK] cat'), ['the', '[MASK]', 'cat']);
});

test('encode: specials, truncation, padding, masks', () => {
  const e = tok.encode('the cat', { maxLength: 6, padding: 'max_length' });
  assert.equal(e.ids, [2, 5, 36, 3, 0, 0]);
  assert.equal(e.attentionMask, [1, 1, 1, 1, 0, 0]);
  assert.equal(e.specialTokensMask, [1, 0, 0, 1, 1, 1]);
  const t = tok.encode('the cat the dog', { maxLength: 4 });
  assert.equal(t.ids, [2, 5, 36, 3]);
  assert.equal(t.attentionMask, [1, 1, 1, 1]);
  const u = tok.encode('the cat the dog');
  assert.equal(u.ids, [2, 5, 36, 5, 37, 3]);
  assert.throws(() => tok.encode('x', { maxLength: 1 }), /maxLength/);
});

test('tokenizer.json gives the same tokens as vocab.txt', () => {
  const j = loadTokenizer(join(dir, 'tokenizer.json'));
  assert.is(j.kind, 'bert-wordpiece');
  for (const s of ['Café RÉSUMÉ naïve', 'unaffable 1245 123', '中国的cat', 'Does the images satisfy the description:cat?']) {
    assert.equal(j.encode(s, { maxLength: 12, padding: 'max_length' }), tok.encode(s, { maxLength: 12, padding: 'max_length' }));
  }
});

test('a vocabulary built from a corpus: specials 0-4, words by count, characters and ## forms; vocab.txt round trip', () => {
  const v = buildWordPieceVocab(['The red Circle.', 'the blue circle', 'Does the images satisfy the description:'], { minCount: 1 });
  assert.equal([...v.keys()].slice(0, 8), ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]', 'the', 'circle', 'red']);
  assert.ok(v.has('x') === false && v.has('z') === false && v.has('##e') && v.has('.') && v.has(':'));
  const d = mkdtempSync(join(tmpdir(), 'aptune-built-'));
  writeFileSync(join(d, 'vocab.txt'), formatVocabTxt(v));
  const t = loadTokenizer(join(d, 'vocab.txt'));
  assert.equal(t.encode('the RED circle.').tokens, ['[CLS]', 'the', 'red', 'circle', '.', '[SEP]']);
  // an unseen word of seen characters is covered by pieces, never [UNK]; an unseen character is [UNK]
  assert.equal(t.tokenize('bird'), ['b', '##i', '##r', '##d']);
  assert.equal(t.tokenize('zebra'), ['[UNK]']);
  const frequent = buildWordPieceVocab(['a a b', 'a c'], { minCount: 2 });
  assert.ok(frequent.has('##b') && frequent.has('c'), 'characters are always kept');
  assert.equal([...frequent.keys()][5], 'a');
  assert.is(frequent.get('b'), frequent.get('a')! + 1, 'b is kept as a character, after the words');
  assert.throws(() => formatVocabTxt(new Map([['a', 0], ['b', 2]])), /ids must be exactly 0\.\.1/);
});

test('files that are not vocabularies give clear errors', () => {
  const d = mkdtempSync(join(tmpdir(), 'aptune-vocab-'));
  const empty = join(d, 'empty.txt'); writeFileSync(empty, '');
  assert.throws(() => loadTokenizer(empty), /empty\.txt: not a WordPiece vocabulary.*empty/);
  const bin = join(d, 'vocab.bin'); writeFileSync(bin, Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 0, 1, 2]));
  assert.throws(() => loadTokenizer(bin), /vocab\.bin: not a WordPiece vocabulary.*binary/);
  const noUnk = join(d, 'vocab.txt'); writeFileSync(noUnk, 'hello\nworld\n');
  assert.throws(() => loadTokenizer(noUnk), /vocab\.txt: not a BERT WordPiece vocabulary: special token '\[UNK\]'/);
  const uni = join(d, 'tokenizer.json'); writeFileSync(uni, JSON.stringify({ model: { type: 'Unigram', vocab: [] } }));
  assert.throws(() => loadTokenizer(uni), /tokenizer\.json: not a supported tokenizer\.json: model\.type is "Unigram"/);
  assert.throws(() => loadTokenizer(join(d, 'missing')), /does not exist/);
});

test.run();
