// The aptune library entry: the engine (tensors, autograd, backends), the models (ViLT, METER, every
// parameter-efficient method, accounting), and the training-side pieces a research script needs (optimisers,
// checkpoints, data, tokenizers). Namespaced so names never collide; `import { engine, models } from 'aptune'`.
// Invariant: this file only re-exports; dependencies still run train -> models -> engine.
export * as engine from './engine/index.ts';
export * as models from './models/index.ts';
export * as optim from './train/optim.ts';
export * as checkpoint from './train/checkpoint.ts';
export * as safetensors from './train/safetensors.ts';
export * as accounting from './models/accounting.ts';
export * as tokenizers from './train/tokenizers/index.ts';
export * as arrow from './train/data/arrow.ts';
export * as tasks from './train/data/tasks.ts';
export * as vqa from './train/data/vqa.ts';
export * as images from './train/data/images.ts';
export * as randaugment from './train/data/randaugment.ts';
export * as collate from './train/data/collate.ts';
export * as loader from './train/data/loader.ts';
export * as taskBatches from './train/data/task-batches.ts';
export * as writers from './train/data/writers.ts';
export * as synthetic from './train/data/synthetic.ts';
export * as pretrained from './train/pretrained.ts';
export * as run from './train/run.ts';
