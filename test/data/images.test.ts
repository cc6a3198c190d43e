// Image pipeline: pixelbert / CLIP sizes, PIL-exact bicubic (against real PIL outputs in
// test/fixtures/images/pil_golden.json, made by make_pil_golden.py), normalisation values, decoding, errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import {
  pixelbertSize, clipResizeSize, centerCropOffsets, roundHalfEven, resizeBicubicPIL, cropRGB, decodeRGB,
  transformImage, pixelbertTransform, clipTransform, resizeRGB, toNormalizedCHW, CLIP_NORMALIZATION, ImageDecodeError,
  type RGBImage,
} from '../../data/images.ts';

const golden = JSON.parse(readFileSync(new URL('../fixtures/images/pil_golden.json', import.meta.url), 'utf8'));
const dec = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'base64'));
const input: RGBImage = { data: dec(golden.input), width: golden.width, height: golden.height };

test('pixelbert sizes (width x height in -> out), incl. the 639 cap that floors to 608', () => {
  // expected values computed with the reference MinMaxResize arithmetic in Python
  const table: [number, number, number, number][] = [
    [640, 480, 512, 384], [480, 640, 384, 512], [640, 427, 576, 384], [500, 375, 512, 384], [384, 384, 384, 384],
    [100, 100, 384, 384], [1280, 720, 608, 352], [720, 1280, 352, 608], [1000, 100, 608, 64], [100, 1000, 64, 608],
    [4000, 3000, 512, 384], [333, 500, 384, 576], [1, 1, 384, 384], [3000, 400, 608, 64], [639, 384, 608, 384],
    [641, 384, 608, 352],
  ];
  for (const [w, h, ew, eh] of table) assert.equal(pixelbertSize(w, h), { width: ew, height: eh }, `${w}x${h}`);
  assert.is(Math.trunc((1333 / 800) * 384), 639);
  // tiny settings
  assert.equal(pixelbertSize(100, 60, 64), { width: 96, height: 64 });
  assert.equal(pixelbertSize(60, 100, 64, 100), { width: 32, height: 96 });
  assert.equal(pixelbertSize(200, 50, 32), { width: 32, height: 0 });
});

test('CLIP resize (torchvision int truncation) and centre crop (round half to even)', () => {
  assert.equal(clipResizeSize(640, 480, 384), { width: 512, height: 384 });
  assert.equal(clipResizeSize(480, 641, 288), { width: 288, height: 384 }); // int(288 * 641 / 480) = 384
  assert.equal(clipResizeSize(500, 333, 384), { width: 576, height: 384 }); // int(576.576...)
  assert.equal(clipResizeSize(384, 500, 384), { width: 384, height: 500 }); // shorter already S: unchanged
  assert.equal(centerCropOffsets(385, 384, 384), { left: 0, top: 0 }); // round(0.5) = 0
  assert.equal(centerCropOffsets(387, 384, 384), { left: 2, top: 0 }); // round(1.5) = 2
  assert.equal(centerCropOffsets(389, 390, 384), { left: 2, top: 3 }); // round(2.5) = 2, round(3) = 3
  assert.equal([roundHalfEven(0.5), roundHalfEven(1.5), roundHalfEven(2.5), roundHalfEven(2.6)], [0, 2, 2, 3]);
});

test('bicubic resize is bit-identical to PIL (down, up, mixed axes)', () => {
  for (const r of golden.resize) {
    const out = resizeBicubicPIL(input, r.width, r.height);
    assert.equal(Array.from(out.data), Array.from(dec(r.data)), `${r.width}x${r.height}`);
  }
});

test('CLIP path (resize + centre crop) is bit-identical to PIL', () => {
  for (const c of golden.clip) {
    const s = clipResizeSize(input.width, input.height, c.size);
    const { left, top } = centerCropOffsets(s.width, s.height, c.size);
    const out = cropRGB(resizeBicubicPIL(input, s.width, s.height), left, top, c.size, c.size);
    assert.equal(Array.from(out.data), Array.from(dec(c.data)), `S=${c.size}`);
  }
});

test("sharp 'cubic' is the sharp kernel closest to PIL when shrinking", async () => {
  const r = golden.resize[0]; // 29x19 -> 20x12
  const ref = dec(r.data);
  const meanDiff = async (kernel: 'cubic' | 'lanczos3' | 'mitchell'): Promise<number> => {
    const out = await sharp(input.data, { raw: { width: input.width, height: input.height, channels: 3 } })
      .resize(r.width, r.height, { fit: 'fill', kernel }).raw().toBuffer();
    let s = 0;
    for (let i = 0; i < out.length; i++) s += Math.abs(out[i] - ref[i]);
    return s / out.length;
  };
  const cubic = await meanDiff('cubic');
  assert.ok(cubic < 2, `cubic mean diff ${cubic}`);
  assert.ok(cubic < await meanDiff('lanczos3') && cubic < await meanDiff('mitchell'));
});

async function png(data: Uint8Array, width: number, height: number, channels: 1 | 3 | 4): Promise<Buffer> {
  return sharp(Buffer.from(data), { raw: { width, height, channels } }).png().toBuffer();
}

test('normalisation values: ViLT 0.5/0.5 and CLIP mean/std', async () => {
  const flat = new Uint8Array(70 * 50 * 3);
  for (let i = 0; i < flat.length; i += 3) { flat[i] = 255; flat[i + 1] = 0; flat[i + 2] = 128; }
  const bytes = await png(flat, 70, 50, 3);
  const v = await transformImage(bytes, pixelbertTransform(64));
  assert.equal(v.shape, [3, 64, 64]); // 70x50 -> 89.6x64 -> 90x64 -> floored to 64x64
  const plane = 64 * 64;
  assert.is(v.data[0], 1);
  assert.is(v.data[plane + 5], -1);
  assert.ok(Math.abs(v.data[2 * plane + 100] - (128 / 255 - 0.5) / 0.5) < 1e-7);
  const c = await transformImage(bytes, clipTransform(32));
  assert.equal(c.shape, [3, 32, 32]);
  const expect = [0, 1, 2].map((k) => ([1, 0, 128 / 255][k] - CLIP_NORMALIZATION.mean[k]) / CLIP_NORMALIZATION.std[k]);
  assert.ok(Math.abs(c.data[0] - expect[0]) < 1e-6 && Math.abs(c.data[1024] - expect[1]) < 1e-6 && Math.abs(c.data[2048 + 77] - expect[2]) < 1e-6);
  // CHW layout: channel planes in order
  const t = toNormalizedCHW({ data: new Uint8Array([0, 255, 51, 255, 0, 51]), width: 2, height: 1 });
  assert.equal(Array.from(t.data), [-1, 1, 1, -1, Math.fround(Math.fround(51 / 255 - 0.5) / 0.5), Math.fround(Math.fround(51 / 255 - 0.5) / 0.5)]);
});

test('decode: grey expands to RGB, alpha is dropped without compositing', async () => {
  const grey = await decodeRGB(await png(new Uint8Array(6 * 4).fill(77), 6, 4, 1));
  assert.equal([grey.width, grey.height, grey.data.length, grey.data[0], grey.data[17]], [6, 4, 72, 77, 77]);
  const rgba = new Uint8Array(4 * 3 * 4);
  for (let i = 0; i < rgba.length; i += 4) { rgba[i] = 10; rgba[i + 1] = 20; rgba[i + 2] = 30; rgba[i + 3] = 0; }
  const d = await decodeRGB(await png(rgba, 4, 3, 4));
  assert.equal(Array.from(d.data.subarray(0, 6)), [10, 20, 30, 10, 20, 30]);
});

test("full pipeline with 'pil' equals decode + PIL resize; 'sharp' gives the same size", async () => {
  const bytes = await png(input.data, input.width, input.height, 3);
  const t = pixelbertTransform(12, 20, 4); // 29x19 -> 18.3x12 -> 18 -> 16 x 12
  const a = await resizeRGB(bytes, t);
  assert.equal([a.width, a.height], [16, 12]);
  assert.equal(Array.from(a.data), Array.from(resizeBicubicPIL(input, 16, 12).data));
  const s = await resizeRGB(bytes, t, undefined, 'sharp');
  assert.equal([s.width, s.height], [16, 12]);
  const c = await resizeRGB(bytes, clipTransform(16), undefined, 'sharp');
  assert.equal([c.width, c.height, c.data.length], [16, 16, 768]);
});

test('corrupt and truncated images name the row and column', async () => {
  const jpg = await sharp(input.data, { raw: { width: input.width, height: input.height, channels: 3 } }).jpeg().toBuffer();
  const where = { file: 'vqav2_train.arrow', row: 17, column: 'image' };
  for (const bad of [jpg.subarray(0, Math.floor(jpg.length / 2)), Buffer.from('definitely not an image')]) {
    for (const resample of ['pil', 'sharp'] as const) {
      try {
        await transformImage(bad, pixelbertTransform(), { where, resample });
        assert.unreachable('should have thrown');
      } catch (e) {
        assert.instance(e, ImageDecodeError);
        assert.match((e as Error).message, /file vqav2_train\.arrow, row 17, column 'image'/);
        assert.is((e as ImageDecodeError).row, 17);
      }
    }
  }
  try { await decodeRGB(new Uint8Array(0), { row: 2, column: 'image_1' }); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, /row 2, column 'image_1': empty image bytes/);
  }
});

test('an aspect ratio that resizes to zero is a clear error', async () => {
  const bytes = await png(new Uint8Array(200 * 10 * 3), 200, 10, 3);
  try { await transformImage(bytes, pixelbertTransform(32), { where: { row: 4, column: 'image' } }); assert.unreachable(); } catch (e) {
    assert.match((e as Error).message, /row 4, column 'image': a 200x10 image resizes to 32x0/);
  }
});

test.run();
