// bench:data — images per second through decode -> RandAugment -> resize -> normalise -> collate at the ViLT
// 384 setting (pixelbert 384 / 639 / 32), on all cores (the real DataLoader over an ImageWorkerPool with one
// worker thread per core), with augmentation on and off, for both resamplers ('pil' exact, 'sharp' libvips).
// Peers measured in the same run: the same loader in the main thread alone (concurrency 4), and a per-stage
// breakdown in one thread, in which the PIL-exact resize is also timed against `referenceResize` (the earlier
// straightforward implementation, kept below as the peer; test/data/images-fast.test.ts proves the two
// byte-identical) and against the fused resize + normalise that transformImage uses.
// The test images are JPEGs of COCO-like sizes generated here with sharp (quality 90, textured content).
// Required rate (an assumption, printed with the result): one GPU step of `--batch` images every `--step-ms`
// milliseconds; defaults 32 images / 250 ms = 128 images/s, roughly a ViLT-B/32 fine-tuning step on one modern
// GPU (the reference runs 64 images per GPU per step). Override with the flags.
// Usage: npm run bench:data [-- --json] [--images N] [--batch B] [--step-ms MS] [--workers W]
// Deliberately not here: Arrow reading (arrow.ts; its streaming is tested in test/data/formats/arrow.test.ts), tokenisation (microseconds per text, negligible here).
import { availableParallelism } from 'node:os';
import sharp from 'sharp';
import {
  decodeRGB, resizeBicubicPIL, resizeNormalizePIL, resizeRGB, toNormalizedCHW, pixelbertTransform, pixelbertSize, VILT_NORMALIZATION,
  type ImageTensor, type Resampler, type RGBImage,
} from '../data/images.ts';
import { RandAugment } from '../data/randaugment.ts';
import { createRng } from '../data/rng.ts';
import { collateImages } from '../data/collate.ts';
import { DataLoader, ImageWorkerPool, imageProcessor } from '../data/loader.ts';
// peer: the earlier straightforward PIL-exact resize (same bytes, no windows), shared with the equivalence test
import { referenceResize } from '../test/reference/pil-resize.ts';

const SIZES: [number, number][] = [[640, 480], [480, 640], [640, 427], [500, 375], [612, 612], [640, 360], [427, 640], [640, 512]];
const T = pixelbertTransform(384);

async function makeJpegs(n: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const [w, h] = SIZES[i % SIZES.length];
    const data = Buffer.alloc(w * h * 3);
    let s = (i + 1) * 2654435761 >>> 0;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const o = (y * w + x) * 3, n8 = s >>> 27;
        data[o] = (x * 255 / w + n8) & 255;
        data[o + 1] = (y * 255 / h + ((x >> 4) & 1) * 60 + n8) & 255;
        data[o + 2] = ((x + y) * 2 + n8 * 3) & 255;
      }
    }
    out.push(await sharp(data, { raw: { width: w, height: h, channels: 3 } }).blur(1.2).jpeg({ quality: 90 }).toBuffer());
  }
  return out;
}

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(name);
  if (i < 0) return def;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`bench:data: ${name} needs a positive number, got ${process.argv[i + 1]}`);
  return v;
}

/** The real loader: DataLoader over an ImageWorkerPool (or the main thread when pool is undefined). */
async function loaderRate(images: Buffer[], count: number, batch: number, augment: boolean, resample: Resampler, pool?: ImageWorkerPool): Promise<number> {
  const loader = new DataLoader({
    source: { length: count, get: (i: number) => ({ images: [images[i % images.length]], row: i }) },
    batchSize: batch, shuffle: true, seed: 1, concurrency: pool ? 2 * pool.size : 4, prefetch: 2,
    process: imageProcessor(T, augment ? new RandAugment(2, 9) : null, { resample, pool }),
    collate: (items) => collateImages(items.map((x) => x[0]), 32),
  });
  const t0 = performance.now();
  let n = 0;
  for await (const b of loader.epoch(0)) n += b.shape[0];
  if (n !== count) throw new Error(`bench:data: loader gave ${n} of ${count} images`);
  return count / ((performance.now() - t0) / 1000);
}

// ---- end of peer ----

async function stages(images: Buffer[], batch: number): Promise<Record<string, number>> {
  const ms: Record<string, number> = {
    decode: 0, randaugment: 0, resize_pil: 0, resize_pil_reference: 0, resize_normalise_pil_fused: 0, resize_sharp: 0,
    normalise: 0, collate: 0,
  };
  const ra = new RandAugment(2, 9);
  const tensors: ImageTensor[] = [];
  for (let i = 0; i < images.length; i++) {
    let t = performance.now();
    const rgb = await decodeRGB(images[i]);
    ms.decode += performance.now() - t; t = performance.now();
    const aug = ra.apply(rgb, createRng(i));
    ms.randaugment += performance.now() - t; t = performance.now();
    const size = pixelbertSize(aug.width, aug.height);
    const r = resizeBicubicPIL(aug, size.width, size.height);
    ms.resize_pil += performance.now() - t; t = performance.now();
    referenceResize(aug, size.width, size.height);
    ms.resize_pil_reference += performance.now() - t; t = performance.now();
    resizeNormalizePIL(aug, size.width, size.height, VILT_NORMALIZATION);
    ms.resize_normalise_pil_fused += performance.now() - t; t = performance.now();
    await resizeRGB(aug, T, undefined, 'sharp');
    ms.resize_sharp += performance.now() - t; t = performance.now();
    tensors.push(toNormalizedCHW(r));
    ms.normalise += performance.now() - t;
  }
  for (let s = 0; s < tensors.length; s += batch) {
    const t = performance.now();
    collateImages(tensors.slice(s, s + batch), 32);
    ms.collate += performance.now() - t;
  }
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(ms)) out[`${k}_ms_per_image`] = +(v / images.length).toFixed(3);
  out.ratio_resize_pil_reference_vs_fast = +(ms.resize_pil_reference / ms.resize_pil).toFixed(2);
  out.ratio_resize_pil_plus_normalise_vs_fused = +((ms.resize_pil + ms.normalise) / ms.resize_normalise_pil_fused).toFixed(2);
  return out;
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const count = arg('--images', 96), batch = arg('--batch', 32), stepMs = arg('--step-ms', 250);
  const workers = arg('--workers', availableParallelism());
  const images = await makeJpegs(16);
  const required = batch / (stepMs / 1000);
  await loaderRate(images, 4, 4, true, 'pil'); // warm up code paths and libvips in this thread
  await loaderRate(images, 4, 4, true, 'sharp');

  await stages(images, Math.min(batch, 16)); // untimed pass: every stage's code optimised before it is timed
  const breakdown = await stages(images, Math.min(batch, 16));
  const rates: Record<string, number> = {};
  const pool = new ImageWorkerPool(workers);
  try {
    await loaderRate(images, 2 * workers, batch, true, 'pil', pool); // start and warm the workers
    await loaderRate(images, 2 * workers, batch, true, 'sharp', pool);
    for (const resample of ['pil', 'sharp'] as const) {
      for (const augment of [true, false]) {
        rates[`all_cores_${resample}_${augment ? 'aug' : 'noaug'}`] = await loaderRate(images, count, batch, augment, resample, pool);
      }
    }
  } finally {
    await pool.close();
  }
  const peer = await loaderRate(images, Math.min(count, 64), batch, true, 'pil');
  const result = {
    setting: 'ViLT pixelbert 384 (longer cap 639, multiple 32), RandAugment(2, 9), collate patch 32',
    images_per_run: count, workers, batch,
    images_per_second: Object.fromEntries(Object.entries(rates).map(([k, v]) => [k, +v.toFixed(1)])),
    main_thread_pil_aug_images_per_second: +peer.toFixed(1),
    ratio_all_cores_vs_main_thread_pil_aug: +(rates.all_cores_pil_aug / peer).toFixed(2),
    ratio_sharp_vs_pil_aug: +(rates.all_cores_sharp_aug / rates.all_cores_pil_aug).toFixed(2),
    ratio_noaug_vs_aug_pil: +(rates.all_cores_pil_noaug / rates.all_cores_pil_aug).toFixed(2),
    stage_breakdown_one_thread: breakdown,
    required_images_per_second: +required.toFixed(1),
    required_assumption: `one training step of ${batch} images every ${stepMs} ms`,
    headroom_pil_aug: +(rates.all_cores_pil_aug / required).toFixed(2),
    headroom_sharp_aug: +(rates.all_cores_sharp_aug / required).toFixed(2),
  };
  if (json) { console.log(JSON.stringify(result)); return; }
  console.log(`bench:data  ${result.setting}; ${count} images per run, ${workers} worker(s), batch ${batch}`);
  for (const [k, v] of Object.entries(result.images_per_second)) console.log(`  ${k.padEnd(24)} ${String(v).padStart(8)} images/s`);
  console.log(`  main thread only (pil, aug) ${result.main_thread_pil_aug_images_per_second} images/s; all cores x${result.ratio_all_cores_vs_main_thread_pil_aug}`);
  console.log(`  sharp vs pil resample (aug) x${result.ratio_sharp_vs_pil_aug}; augmentation off vs on (pil) x${result.ratio_noaug_vs_aug_pil}`);
  console.log('  one-thread stage breakdown (ms per image):');
  for (const [k, v] of Object.entries(breakdown)) console.log(`    ${k.padEnd(28)} ${v}`);
  console.log(`  required: ${result.required_images_per_second} images/s (${result.required_assumption}); ` +
    `headroom pil x${result.headroom_pil_aug}, sharp x${result.headroom_sharp_aug}`);
}

await main();
