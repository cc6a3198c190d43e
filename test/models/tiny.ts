// Tiny batches and helpers shared by the model tests (not a test file itself).
// Invariants: deterministic inputs (fixed formulas, no RNG); every valid ViLT pixel has a non-zero channel sum.
import { Tensor, tensor } from '../../engine/index.ts';
import { createModel, TINY_METHOD_OPTIONS, type Batch, type MethodName, type Task, type VLModel } from '../../models/index.ts';

export const METHODS: MethodName[] = ['apt', 'deep_prompt', 'shallow_prompt', 'lora', 'adapter', 'parallel_adapter', 'classifier_only', 'full'];
export const NUM_ANSWERS = 7;

export function tinyModel(backbone: 'vilt' | 'meter', method: MethodName, task: Task = 'vqa', seed = 0): VLModel {
  return createModel({ backbone, config: 'tiny', task, numAnswers: NUM_ANSWERS, method, methodOptions: TINY_METHOD_OPTIONS[method], seed });
}

/** image [B, 3, H, W]; rows >= validH[b] / cols >= validW[b] are zero padding. */
export function image(B: number, H: number, W: number, validH: number[] = [], validW: number[] = [], phase = 0): Tensor {
  const out = new Float32Array(B * 3 * H * W);
  for (let b = 0; b < B; b++) {
    const vh = validH[b] ?? H, vw = validW[b] ?? W;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < vh; y++) {
        for (let x = 0; x < vw; x++) {
          out[((b * 3 + c) * H + y) * W + x] = 0.3 + 0.5 * Math.sin(0.7 * y + 1.3 * x + 2.1 * c + 0.9 * b + phase);
        }
      }
    }
  }
  return tensor(out, [B, 3, H, W]);
}

export function text(B: number, L: number, validLens: number[], pad: number, vocab: number, start: number): { ids: Tensor; mask: Tensor } {
  const ids = new Int32Array(B * L);
  const mask = new Float32Array(B * L);
  for (let b = 0; b < B; b++) {
    for (let j = 0; j < L; j++) {
      const valid = j < validLens[b];
      ids[b * L + j] = valid ? (j === 0 ? start : 2 + ((7 * j + 3 * b) % (vocab - 2))) : pad;
      mask[b * L + j] = valid ? 1 : 0;
    }
  }
  return { ids: tensor(ids, [B, L], { dtype: 'int32' }), mask: tensor(mask, [B, L]) };
}

export function vqaTargets(B: number, A: number): Tensor {
  const t = new Float32Array(B * A);
  for (let b = 0; b < B; b++) { t[b * A + ((3 * b + 1) % A)] = 1; t[b * A + ((5 * b + 4) % A)] = 0.3; }
  return tensor(t, [B, A]);
}

/** A VQA batch for the tiny presets (ViLT: 24x24 with the second image padded to 16x16 valid; METER: 16x16). */
export function vqaBatch(backbone: 'vilt' | 'meter', B = 2): Batch {
  const tx = backbone === 'vilt' ? text(B, 6, [6, 4], 0, 64, 1) : text(B, 6, [6, 4], 1, 64, 0);
  const img = backbone === 'vilt' ? image(B, 24, 24, [24, 16], [24, 16]) : image(B, 16, 16);
  return { textIds: tx.ids, textMasks: tx.mask, image: img, vqaTargets: vqaTargets(B, NUM_ANSWERS) };
}

export function maxAbsDiff(a: Tensor, b: Tensor): number {
  const x = a.toArray(), y = b.toArray();
  if (x.length !== y.length) throw new Error(`maxAbsDiff: sizes ${x.length} vs ${y.length}`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}
