// Public face of the parameter-efficient methods: the registry (registry.ts), the method contract and injection
// machinery (inject.ts), the backbone contract (points.ts) and the methods' modules.
// Deliberately NOT here: anything of its own (a barrel).
export * from './registry.ts';
export * from './inject.ts';
export * from './points.ts';
export { ApproximatePrompt } from './apt.ts';
export { LoraModule } from './lora.ts';
export { Adapter } from './adapter.ts';
export { ParallelAdapter } from './parallel_adapter.ts';
