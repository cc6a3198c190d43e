// Worker-thread side of ImageWorkerPool (loader.ts): runs the per-item image pipeline (decode, RandAugment,
// resize, normalise) for one item at a time and sends the [3, H, W] float32 tensors back (transferred).
// The work is exactly `runImageTask`, the same function the main thread uses, with an Rng rebuilt from the
// item seed, so a batch is identical whether it was processed here or in the main thread.
// Deliberately not here: scheduling (the pool in loader.ts), collation, anything stateful between items.
// Invariants: one reply per request id; failures reply with the error's message and its file/row/column so the
// pool can rethrow an ImageDecodeError (and the loader can skip it when asked).
import { parentPort } from 'node:worker_threads';
import { ImageDecodeError } from './images.ts';
import { runImageTask, type ImageTask } from './image-task.ts';

if (!parentPort) throw new Error('image-worker.ts must run in a worker thread (use ImageWorkerPool)');
const port = parentPort;

port.on('message', async (msg: { id: number; task: ImageTask }) => {
  try {
    const out = await runImageTask(msg.task);
    port.postMessage({ id: msg.id, ok: true, tensors: out }, out.map((t) => t.data.buffer as ArrayBuffer));
  } catch (e) {
    const err = e as Error;
    port.postMessage({
      id: msg.id, ok: false, message: err.message ?? String(e), decode: e instanceof ImageDecodeError,
      detail: e instanceof ImageDecodeError ? e.detail : undefined,
      where: e instanceof ImageDecodeError ? { file: e.file, row: e.row, column: e.column } : undefined,
    });
  }
});
port.postMessage({ ready: true });
