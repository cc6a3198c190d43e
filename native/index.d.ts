// Type declarations of the aptune CUDA addon (build/Release/aptune_cuda.node, built from native/ and cuda/).
// This is the whole native boundary (DESIGN.md lesson 6): memory functions over integer handles and one thin entry
// per kernel, named after its op. Every tensor argument is a pair (handle, element offset); shapes and strides are
// arrays of integers in elements; dtype codes are 0 = float32, 1 = int32 (both 4-byte words).
// Invariants: probe() never throws; every other function throws "unavailable: <reason>" without a usable device,
// and an Error carrying the CUDA/cuBLAS error string on failure; a freed or unknown handle, or an access outside a
// handle's bytes, throws before anything is launched. Only download() and synchronize() wait for the GPU; they also
// report device-side errors (an index or label out of range, an int32 division by zero) raised by earlier kernels.

export type Handle = number;
/** 0 = float32, 1 = int32 */
export type DTypeCode = 0 | 1;

export interface CudaProbe {
  available: boolean;
  /** why CUDA is unavailable; '' when available */
  reason: string;
  device: string;
  computeCapability: string;
  totalMemory: number;
  driverVersion: number;
  runtimeVersion: number;
  /** the cuBLAS library that was opened */
  cublas: string;
}

export interface CudaMemoryStats {
  /** bytes requested by live handles */
  allocated: number;
  /** bytes held from cudaMalloc (live + cached) */
  reserved: number;
  peakAllocated: number;
  peakReserved: number;
  handles: number;
}

type T = [Handle, number];
type Dims = number[];

export interface CudaAddon {
  probe(): CudaProbe;
  alloc(bytes: number): Handle;
  free(h: Handle): void;
  /** host -> device at an element offset (4-byte elements) */
  upload(h: Handle, elemOffset: number, data: Float32Array | Int32Array): void;
  /** device -> host at an element offset; waits for the stream */
  download(h: Handle, elemOffset: number, out: Float32Array | Int32Array): void;
  synchronize(): void;
  memoryStats(): CudaMemoryStats;
  resetPeak(): void;
  emptyCache(): void;
  /** 0 = fp32 (cublasSgemm), 1 = tf32 (cublasGemmEx, COMPUTE_32F_FAST_TF32), 2 = bf16 (operands rounded to bf16, fp32 accumulate) */
  setGemmMode(mode: 0 | 1 | 2): void;
  gemmMode(): number;

  // elementwise binary with broadcasting: (dtype, out, a, b, shape, aStrides, bStrides)
  add(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  sub(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  mul(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  div(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  pow(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  maximum(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  minimum(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  eq(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  ne(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  lt(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  le(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  gt(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  ge(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, Dims]): void;
  /** (dtype, condDtype, out, cond, a, b, shape, condStrides, aStrides, bStrides) */
  where(dtype: DTypeCode, condDtype: DTypeCode, ...r: [...T, ...T, ...T, ...T, Dims, Dims, Dims, Dims]): void;

  // elementwise unary over n contiguous elements: (dtype, out, x, n); int32 only for neg, abs, sign, relu
  neg(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  exp(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  log(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  sqrt(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  rsqrt(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  abs(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  sign(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  tanh(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  sigmoid(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  relu(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  erf(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  gelu(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  quick_gelu(dtype: DTypeCode, ...r: [...T, ...T, number]): void;
  /** (out, x, g, n) */
  gelu_backward(...r: [...T, ...T, ...T, number]): void;
  quick_gelu_backward(...r: [...T, ...T, ...T, number]): void;
  /** (dtype, out, x, n, scale, shift) */
  affine(dtype: DTypeCode, ...r: [...T, ...T, number, number, number]): void;
  /** (out, x, n, exponent) */
  pow_scalar(...r: [...T, ...T, number, number]): void;
  /** (out, x, target, n) */
  bce_with_logits(...r: [...T, ...T, ...T, number]): void;
  /** (out, x, target, g, n) */
  bce_with_logits_backward(...r: [...T, ...T, ...T, ...T, number]): void;
  /** (dtype, out, n, value) */
  fill(dtype: DTypeCode, ...r: [...T, number, number]): void;
  /** (fromDtype, toDtype, out, x, n) */
  cast(from: DTypeCode, to: DTypeCode, ...r: [...T, ...T, number]): void;

  /** (dtype, out, x, outerShape, outerStrides, innerShape, innerStrides) */
  sum(dtype: DTypeCode, ...r: [...T, ...T, Dims, Dims, Dims, Dims]): void;
  /** (dtype, values (handle -1: none, for argmax), indices, x, outerShape, outerStrides, axisSize, axisStride) */
  max(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, number, number]): void;

  /**
   * (out, a, b, M, N, K, transA, transB, aOffsets, bOffsets, batch, strideA, strideB): for each l, `batch` GEMMs
   * C[(l * batch + j) * M * N ..] = op(A[aOffsets[l] + j * strideA]) op(B[bOffsets[l] + j * strideB]), row-major.
   */
  matmul(...r: [...T, ...T, ...T, number, number, number, boolean, boolean, Dims, Dims, number, number, number]): void;

  /** (out, x, rows, D, mask (handle -1: none), maskRowShape, maskRowStrides, maskColStride) */
  softmax(...r: [...T, ...T, number, number, ...T, Dims, Dims, number]): void;
  log_softmax(...r: [...T, ...T, number, number, ...T, Dims, Dims, number]): void;
  /** (out, y, g, rows, D) */
  softmax_backward(...r: [...T, ...T, ...T, number, number]): void;
  log_softmax_backward(...r: [...T, ...T, ...T, number, number]): void;
  /** (y, mean, rstd, x, weight, bias, R, D, eps) */
  layer_norm(...r: [...T, ...T, ...T, ...T, ...T, ...T, number, number, number]): void;
  /** (dx, dweight, dbias, g, x, weight, mean, rstd, R, D) */
  layer_norm_backward(...r: [...T, ...T, ...T, ...T, ...T, ...T, ...T, ...T, number, number]): void;
  /** (y, mask, x, n, p, seed, offset) */
  dropout(...r: [...T, ...T, ...T, number, number, number, number]): void;
  /** (loss, logits, labels, B, C, ignoreIndex) */
  cross_entropy(...r: [...T, ...T, ...T, number, number, number]): void;
  /** (dlogits, logits, labels, g, B, C, ignoreIndex) */
  cross_entropy_backward(...r: [...T, ...T, ...T, ...T, number, number, number]): void;

  /** (dtype, out, x, idx, O, A, I, K) */
  index_select(dtype: DTypeCode, ...r: [...T, ...T, ...T, number, number, number, number]): void;
  /** (dtype, out, g, idx, O, size, I, K) */
  index_add(dtype: DTypeCode, ...r: [...T, ...T, ...T, number, number, number, number]): void;
  /** (dtype, out, x, idx, idxShape, xStrides (axis entry 0), axisStride, axisSize, xNumel) */
  gather(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, number, number, number]): void;
  /** (dtype, out, g, idx, idxShape, outStrides (axis entry 0), axisStride, axisSize, outNumel) */
  scatter_add(dtype: DTypeCode, ...r: [...T, ...T, ...T, Dims, Dims, number, number, number]): void;

  /** (out, x, shape, outStrides, xStrides): permute, slice, expand, concat */
  copy_strided(...r: [...T, ...T, Dims, Dims, Dims]): void;
  /** (out, x, outShape, inShape, before, valueBits) */
  pad(...r: [...T, ...T, Dims, Dims, Dims, number]): void;
  /** (out, x, P, H, W, outH, outW, alignCorners) */
  resize_bilinear(...r: [...T, ...T, number, number, number, number, number, boolean]): void;
  /** (gx, g, P, inH, inW, outH, outW, alignCorners) */
  resize_bilinear_backward(...r: [...T, ...T, number, number, number, number, number, boolean]): void;
  resize_bicubic(...r: [...T, ...T, number, number, number, number, number, boolean]): void;
  /** (dtype, out, n, seed, offset, low, high) */
  random_uniform(dtype: DTypeCode, ...r: [...T, number, number, number, number, number]): void;
  /** (dtype, out, n, seed, offset, mean, std) */
  random_normal(dtype: DTypeCode, ...r: [...T, number, number, number, number, number]): void;
  /** (param, grad, m, v, n, lr, beta1, beta2, eps, weightDecay, stepSize) */
  adamw_step(...r: [...T, ...T, ...T, ...T, number, number, number, number, number, number, number]): void;
  /** (param, grad, buf (handle -1: none), n, lr, momentum, weightDecay) */
  sgd_step(...r: [...T, ...T, ...T, number, number, number, number]): void;
}
