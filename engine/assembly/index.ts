// Entry of the AssemblyScript kernel module (compiled by scripts/build-wasm.mjs; the host is engine/backends/wasm.ts).
// Does not: use managed objects or the runtime allocator (runtime stub, abort= elided): the host owns memory.
// Invariants: every export takes byte pointers into the imported memory, counts and scalars; kernel names follow
// the op names of engine/backend.ts (`grep layer_norm` finds this module too).

export * from './elementwise';
export * from './reduce';
export * from './matmul';
export * from './movement';
export * from './random';
export * from './optim';

/** First byte the host may allocate from (above any static data). */
export function heap_base(): usize { return (__heap_base + 63) & ~(<usize>63); }
