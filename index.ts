// The aptune library entry: the engine (tensors, autograd, backends), the models (ViLT, METER, every
// parameter-efficient method, accounting), and the training-side pieces a research script needs (optimisers,
// checkpoints, data, tokenizers). Namespaced so names never collide; `import { engine, models } from 'aptune'`.
// Invariant: this file only re-exports; dependencies still run experiments -> train -> models -> engine, with data/
// (formats, images, tasks, tokenizers) used by train/ and experiments/ and importing none of them.
export * as engine from './engine/index.ts';
export * as models from './models/index.ts';
export * as optim from './train/optim.ts';
export * as checkpoint from './train/checkpoint.ts';
export * as safetensors from './data/formats/safetensors.ts';
export * as accounting from './models/accounting.ts';
export * as tokenizers from './data/tokenizers/index.ts';
export * as arrow from './data/formats/arrow.ts';
export * as tasks from './data/tasks.ts';
export * as vqa from './data/vqa.ts';
export * as images from './data/images.ts';
export * as randaugment from './data/randaugment.ts';
export * as collate from './data/collate.ts';
export * as loader from './data/loader.ts';
export * as taskBatches from './data/task-batches.ts';
export * as writers from './data/writers.ts';
export * as synthetic from './experiments/synthetic.ts';
export * as pretrained from './train/pretrained.ts';
export * as run from './train/run.ts';
