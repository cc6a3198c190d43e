// RoBERTa byte-level BPE on a hand-made vocab.json + merges.txt (test/fixtures/tokenizers/roberta); the
// expected pieces were derived by hand from GPT-2's pre-tokeniser pattern and the merge ranks.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RobertaTokenizer, bytesToUnicode } from '../../../data/tokenizers/roberta.ts';
import { loadTokenizer } from '../../../data/tokenizers/index.ts';

const dir = new URL('../../fixtures/tokenizers/roberta/', import.meta.url).pathname;
const tok = RobertaTokenizer.fromFiles(join(dir, 'vocab.json'), join(dir, 'merges.txt'));

test('bytes_to_unicode: printable bytes map to themselves, the rest above U+0100', () => {
  const t = bytesToUnicode();
  assert.is(t.length, 256);
  assert.is(new Set(t).size, 256);
  assert.is(t[32], '\u0120'); // space -> 'Ġ'
  assert.is(t[10], '\u010a'); // newline -> 'Ċ'
  assert.is(t[0], '\u0100');
  assert.is(t[65], 'A');
  assert.is(t[0xad], '\u0143'); // soft hyphen is not in the printable ranges: 256 + 67
});

test('special ids <s> 0, <pad> 1, </s> 2', () => {
  assert.equal([tok.startId, tok.padId, tok.endId, tok.unkId, tok.maskId], [0, 1, 2, 3, 35]);
});

test('leading spaces become Ġ and merge by rank', () => {
  assert.equal(tok.tokenize('the cat'), ['t', 'he', 'Ġcat']); // 't he' has no merge; 'Ġ c' < 'Ġc a' < 'Ġca t'
  assert.equal(tok.tokenize(' the'), ['Ġthe']);
  assert.equal(tok.tokenize('The dog is cat!'), ['T', 'he', 'Ġdog', 'Ġ', 'is', 'Ġcat', '!']);
  assert.equal(tok.tokenize('cat'), ['cat']); // 'c a' then 'ca t'
});

test('GPT-2 whitespace rule: a run of spaces leaves its last space to the next word', () => {
  assert.equal(tok.tokenize('  cat'), ['Ġ', 'Ġcat']);
  assert.equal(tok.tokenize('cat  '), ['cat', 'Ġ', 'Ġ']);
});

test("contractions, digits, unicode bytes", () => {
  assert.equal(tok.preTokenize("it's"), ['it', "'s"]);
  assert.equal(tok.tokenize("it's"), ['i', 't', "'", 's']); // "'s" is in the vocab but no merge builds it
  assert.equal(tok.preTokenize('a  b\n'), ['a', 'Ġ', 'Ġb', 'Ċ']);
  assert.equal(tok.tokenize('cat 2024'), ['cat', 'Ġ', '2', '0', '2', '4']);
  assert.equal(tok.tokenize('é'), ['Ã', '©']); // UTF-8 C3 A9 through the byte table
  assert.equal(tok.encode('é').ids, [0, 3, 3, 2]); // pieces missing from the vocab -> <unk>
});

test('encode: truncation, padding with <pad> = 1, masks', () => {
  const e = tok.encode(' the cat dog', { maxLength: 7, padding: 'max_length' });
  assert.equal(e.ids, [0, 24, 27, 32, 2, 1, 1]);
  assert.equal(e.attentionMask, [1, 1, 1, 1, 1, 0, 0]);
  const t = tok.encode(' the cat dog', { maxLength: 4 });
  assert.equal(t.ids, [0, 24, 27, 2]);
  assert.equal(tok.tokenize('the <mask> cat'), ['t', 'he', 'Ġ', '<mask>', 'Ġcat']);
});

test('tokenizer.json and directory loading agree with vocab.json + merges.txt', () => {
  const j = loadTokenizer(join(dir, '..', 'roberta-tokenizer.json'));
  const d = loadTokenizer(dir);
  const m = loadTokenizer(join(dir, 'merges.txt'));
  for (const t of [j, d, m]) {
    assert.is(t.kind, 'roberta-bpe');
    for (const s of ['The dog is cat!', '  cat', "it's é 2024"]) assert.equal(t.encode(s, { maxLength: 10 }), tok.encode(s, { maxLength: 10 }));
  }
});

test('files that are not BPE vocabularies give clear errors', () => {
  const d = mkdtempSync(join(tmpdir(), 'aptune-bpe-'));
  writeFileSync(join(d, 'vocab.json'), '[1, 2, 3]');
  writeFileSync(join(d, 'merges.txt'), '#version: 0.2\na b\n');
  assert.throws(() => loadTokenizer(d), /vocab\.json: not a BPE vocabulary: expected a JSON object/);
  writeFileSync(join(d, 'vocab.json'), '{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "a": 4');
  assert.throws(() => loadTokenizer(d), /vocab\.json: not a BPE vocabulary: invalid JSON/);
  writeFileSync(join(d, 'vocab.json'), '{"a": 0}');
  assert.throws(() => loadTokenizer(d), /special token '<s>'/);
  writeFileSync(join(d, 'vocab.json'), '{"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}');
  writeFileSync(join(d, 'merges.txt'), '#version: 0.2\na b c\n');
  assert.throws(() => loadTokenizer(d), /merges\.txt line 2: a merge must be two symbols/);
});

test.run();
