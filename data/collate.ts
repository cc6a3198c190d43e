// Batch collation (spec §5.3, §5.4, §1.3) into plain typed arrays plus shapes (no engine dependency):
//   images: zero-padded bottom/right to the batch's max H x W (the reference takes the max over every image
//     key of the batch, so NLVR2's two images share one padded size: pass `padTo`), with a pixel mask and the
//     patch mask PyTorch's nearest resize of that pixel mask to the Hp x Wp patch grid gives;
//   texts: ids placed into a zero-filled [B, L] array with L the longest encoding, attention mask from the
//     tokenizer (so RoBERTa negatives get id 0 in padded slots, as in the reference).
// Deliberately not here: MLM masking (unused in fine-tuning), tensors, normalisation.
// Invariants: padded pixels are exactly 0 (the value the reference pads with, after normalisation) and have
// pixel mask 0; Hp = floor(H / P), Wp = floor(W / P); a patch is valid iff its nearest source pixel is valid.
import type { ImageTensor } from './images.ts';

export interface ImageBatch {
  data: Float32Array; // [B, 3, H, W]
  shape: [number, 3, number, number];
  pixelMask: Uint8Array; // [B, H, W], 1 = real pixel
  patchMask: Uint8Array; // [B, Hp, Wp], 1 = patch of real pixels
  patchShape: [number, number, number];
  /** Unpadded (height, width) of each image. */
  sizes: { height: number; width: number }[];
  /** Number of valid patch rows / cols of each image (the reference's h_b, w_b). */
  patchGrid: { rows: number; cols: number }[];
}

export interface CollateImageOptions {
  /** Pad to at least this size (e.g. the max over both NLVR2 image columns). */
  padTo?: { height: number; width: number };
}

/** Largest height and width over several lists of images. */
export function maxImageSize(...lists: readonly (readonly ImageTensor[])[]): { height: number; width: number } {
  let height = 0, width = 0;
  for (const list of lists) for (const im of list) { height = Math.max(height, im.shape[1]); width = Math.max(width, im.shape[2]); }
  return { height, width };
}

export function collateImages(images: readonly ImageTensor[], patchSize: number, opts: CollateImageOptions = {}): ImageBatch {
  if (images.length === 0) throw new Error('collateImages: empty batch');
  if (!(Number.isInteger(patchSize) && patchSize > 0)) throw new Error(`collateImages: patch size must be a positive integer, got ${patchSize}`);
  images.forEach((im, b) => {
    if (im.shape.length !== 3 || im.shape[0] !== 3) {
      throw new Error(`collateImages: image ${b} must have shape [3, H, W], got [${im.shape.join(', ')}]`);
    }
    if (im.data.length !== 3 * im.shape[1] * im.shape[2]) {
      throw new Error(`collateImages: image ${b} has ${im.data.length} values for shape [${im.shape.join(', ')}]`);
    }
  });
  const m = maxImageSize(images);
  const H = Math.max(m.height, opts.padTo?.height ?? 0), W = Math.max(m.width, opts.padTo?.width ?? 0);
  const B = images.length, Hp = Math.floor(H / patchSize), Wp = Math.floor(W / patchSize);
  if (Hp === 0 || Wp === 0) throw new Error(`collateImages: batch size ${H}x${W} is smaller than one ${patchSize}x${patchSize} patch`);
  const data = new Float32Array(B * 3 * H * W);
  const pixelMask = new Uint8Array(B * H * W);
  const patchMask = new Uint8Array(B * Hp * Wp);
  const sizes: { height: number; width: number }[] = [];
  const patchGrid: { rows: number; cols: number }[] = [];
  // PyTorch 'nearest': src = floor(dst * (in / out)) with a float scale.
  const sh = H / Hp, sw = W / Wp;
  for (let b = 0; b < B; b++) {
    const im = images[b], h = im.shape[1], w = im.shape[2];
    sizes.push({ height: h, width: w });
    if (h === H && w === W) data.set(im.data, b * 3 * H * W); // unpadded: one contiguous copy
    else if (w === W) for (let c = 0; c < 3; c++) data.set(im.data.subarray(c * h * w, (c + 1) * h * w), (b * 3 + c) * H * W);
    else {
      for (let c = 0; c < 3; c++) {
        for (let y = 0; y < h; y++) {
          const src = (c * h + y) * w, dst = ((b * 3 + c) * H + y) * W;
          data.set(im.data.subarray(src, src + w), dst);
        }
      }
    }
    if (w === W) pixelMask.fill(1, b * H * W, (b * H + h) * W);
    else for (let y = 0; y < h; y++) pixelMask.fill(1, (b * H + y) * W, (b * H + y) * W + w);
    let rows = 0, cols = 0;
    for (let i = 0; i < Hp; i++) if (Math.floor(i * sh) < h) rows = i + 1;
    for (let j = 0; j < Wp; j++) if (Math.floor(j * sw) < w) cols = j + 1;
    for (let i = 0; i < rows; i++) patchMask.fill(1, (b * Hp + i) * Wp, (b * Hp + i) * Wp + cols);
    patchGrid.push({ rows, cols });
  }
  return { data, shape: [B, 3, H, W], pixelMask, patchMask, patchShape: [B, Hp, Wp], sizes, patchGrid };
}

/** One tokenizer output. */
export interface TextEncoding {
  ids: ArrayLike<number>;
  attentionMask: ArrayLike<number>;
}

export interface TextBatch {
  ids: Int32Array; // [B, L]
  mask: Int32Array; // [B, L]
  shape: [number, number];
}

/** Places each encoding into a `fill`-filled [B, L] array, L = longest encoding (or `length` if larger). */
export function collateTexts(encodings: readonly TextEncoding[], opts: { fill?: number; length?: number } = {}): TextBatch {
  if (encodings.length === 0) throw new Error('collateTexts: empty batch');
  let L = opts.length ?? 0;
  encodings.forEach((e, b) => {
    if (e.ids.length !== e.attentionMask.length) {
      throw new Error(`collateTexts: encoding ${b} has ${e.ids.length} ids but ${e.attentionMask.length} mask values`);
    }
    L = Math.max(L, e.ids.length);
  });
  const B = encodings.length, ids = new Int32Array(B * L).fill(opts.fill ?? 0), mask = new Int32Array(B * L);
  encodings.forEach((e, b) => {
    for (let t = 0; t < e.ids.length; t++) { ids[b * L + t] = e.ids[t]; mask[b * L + t] = e.attentionMask[t]; }
  });
  return { ids, mask, shape: [B, L] };
}
