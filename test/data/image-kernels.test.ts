// The unrolled resampling kernels of data/images.ts are generated: the block between its "unrolled kernels" and
// "end of generated kernels" markers equals scripts/gen-image-kernels.ts's output byte for byte (edit the generator,
// then `node --import tsx scripts/gen-image-kernels.ts --write`). Their arithmetic against the generic loops and
// PIL is checked by images.test.ts and images-fast.test.ts.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { IMAGES_FILE, MAX_TAPS, currentBlock, imageKernels } from '../../scripts/gen-image-kernels.ts';

test('data/images.ts holds exactly the generated kernels', () => {
  const { block } = currentBlock(readFileSync(IMAGES_FILE, 'utf8'));
  const want = imageKernels();
  if (block !== want) {
    const a = block.split('\n'), b = want.split('\n');
    const i = a.findIndex((l, k) => l !== b[k]);
    assert.unreachable(`data/images.ts differs from scripts/gen-image-kernels.ts at block line ${i + 1}:\n  file: ${a[i]}\n  gen:  ${b[i]}\n(run node --import tsx scripts/gen-image-kernels.ts --write)`);
  }
});

test('the generator writes one horizontal and one vertical kernel per tap count, and the tables', () => {
  const out = imageKernels();
  for (let k = 1; k <= MAX_TAPS; k++) {
    assert.ok(out.includes(`function h${k}(`), `h${k}`);
    assert.ok(out.includes(`function v${k}(`), `v${k}`);
  }
  assert.not.ok(out.includes(`function h${MAX_TAPS + 1}(`));
  assert.match(out, /^const H_KERNELS = \[h1, h2, h3, h4, h5, h6, h7, h8\];$/m);
  // h3's first channel: taps at byte offsets 0, 3, 6 with weights w0..w2, rounding term first
  assert.ok(out.includes('dst[q] = (HALF + src[o] * w0 + src[o + 3] * w1 + src[o + 6] * w2) >> PRECISION_BITS;'));
});

test.run();
