// Public surface of the module toolkit (models/nn). Re-exports only; no logic.
export * from './module.ts';
export * from './layers.ts';
export * from './init.ts';
export * from './attention.ts';
