// One item's image work as plain, structured-cloneable data (ImageTask) and the function that performs it.
// Shared by the main thread (imageProcessor without a pool) and the worker threads (image-worker.ts), so the
// two paths cannot drift apart. All images of an item draw from one Rng seeded with `seed`, in column order.
// Deliberately not here: scheduling, collation, tensors.
// Invariants: the output is a pure function of the task (bytes, transform, augmentation, seed).
import { transformImage, type ImageTensor, type ImageTransform, type ImageWhere, type Normalization, type Resampler } from './images.ts';
import { RandAugment, type OpName } from './randaugment.ts';
import { createRng } from './rng.ts';

export interface ImageTask {
  images: Uint8Array[];
  /** One entry per image (file/row/column for errors). */
  where: ImageWhere[];
  transform: ImageTransform;
  /** RandAugment parameters, or null for no augmentation. */
  augment: { n: number; m: number; ops?: readonly OpName[] } | null;
  normalization?: Normalization;
  resample?: Resampler;
  /** Item seed: the Rng for RandAugment is createRng(seed). */
  seed: number;
}

export async function runImageTask(task: ImageTask): Promise<ImageTensor[]> {
  const ra = task.augment ? new RandAugment(task.augment.n, task.augment.m, task.augment.ops) : null;
  const rng = createRng(task.seed);
  const out: ImageTensor[] = [];
  for (let k = 0; k < task.images.length; k++) {
    out.push(await transformImage(task.images[k], task.transform, {
      normalization: task.normalization, where: task.where[k], resample: task.resample,
      augment: ra ? (img) => ra.apply(img, rng) : undefined,
    }));
  }
  return out;
}
