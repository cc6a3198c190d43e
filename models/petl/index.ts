// Public face of the parameter-efficient methods: the registry (registry.ts), the method contract and injection
// machinery (inject.ts), the backbone contract (points.ts) and the methods' modules.
// Also the tiny test presets' method sizes.
// Deliberately NOT here: method definitions or their list (registry.ts).
import type { MethodOptionsMap } from './registry.ts';

export * from './registry.ts';
export * from './inject.ts';
export * from './points.ts';
export { ApproximatePrompt } from './apt.ts';
export { LoraModule } from './lora.ts';
export { Adapter } from './adapter.ts';
export { ParallelAdapter } from './parallel_adapter.ts';

/** Sizes used by the tiny test presets (hidden 64). */
export const TINY_METHOD_OPTIONS: MethodOptionsMap = {
  apt: { tokens: 6, rank: 2 },
  deep_prompt: { tokens: 4 },
  shallow_prompt: { tokens: 4 },
  lora: { rank: 2 },
  adapter: { rank: 8 },
  parallel_adapter: { rank: 8, scale: 4 },
  classifier_only: {},
  full: {},
};
