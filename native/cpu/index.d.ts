// Type declarations of the aptune CPU addon (build/Release/aptune_cpu.node, built from native/cpu/ by CMake with a
// C++ compiler alone). The whole boundary: a GEMM, dropout and bias + GELU over the wasm heap and the names of the chosen vector paths.
// Invariants: addresses are byte addresses inside `heap` (a Float32Array over the whole WebAssembly memory); offs is
// the address of batch (a, b, c) int32 triples of element offsets; everything is range-checked before the product.

export interface CpuAddon {
  /** C[t] = op(A[t]) op(B[t]) for t < batch, C [M, N] row-major; synchronous, on `threads` threads (caller included) */
  gemm(heap: Float32Array, a: number, b: number, c: number, offs: number, batch: number, M: number, N: number, K: number,
    transA: number, transB: number, threads: number): void;
  /** "avx512", "avx2" or "generic": the GEMM's micro-kernel and the vector path of dropout and biasGelu (generic: they
   *  are scalar, slower than WebAssembly SIMD, and the wasm backend does not call them) */
  isa(): string;
  /** y = x * mask for the n elements of the Philox draw (seed, offset) (engine/random.ts), mask = 0 or 1/(1-p);
   *  synchronous, on `threads` threads; bit-identical to the WebAssembly kernel */
  dropout(heap: Float32Array, x: number, y: number, mask: number, n: number, p: number, seed: number, offset: number, threads: number): void;
  /** out = gelu(x + bias) (g = 0) or g * gelu'(x + bias) for x [rows, D]; false (nothing written) when the CPU has
   *  neither vector path; agrees with the WebAssembly kernel to float rounding */
  biasGelu(heap: Float32Array, x: number, bias: number, g: number, out: number, rows: number, D: number, threads: number): boolean;
}
