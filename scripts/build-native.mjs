// Builds the optional native addons (CMakeLists.txt) with cmake-js: build/Release/aptune_cpu.node (native/cpu/, the
// CPU GEMM; needs cmake and a C++ compiler) and, when nvcc is found (CUDACXX or PATH), build/Release/aptune_cuda.node
// (native/ + cuda/). Does not: fail `npm install`. Without cmake or a C++ compiler it prints ONE line and exits 0;
// a failed build is a warning and exits 0, unless --strict (used by scripts/gpu-check.sh, which needs CUDA) is given.
// Invariants: device code for sm_80 and sm_90 (CMAKE_CUDA_ARCHITECTURES "80;90", override with
// APTUNE_CUDA_ARCHS); no GPU is needed to build; nothing is downloaded (Node-API headers from node_modules).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, dirname, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const strict = process.argv.includes('--strict');
const verbose = process.argv.includes('--verbose') || strict;

// In a checkout, first regenerate what the op contract gives (cuda/op_codes.cuh, native/index.d.ts); an installed
// package ships them generated. Never fatal here (npm install must not fail because of the addon).
if (existsSync(join(root, 'scripts/gen-ops.ts'))) {
  const g = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts/gen-ops.ts')], { cwd: root, stdio: verbose ? 'inherit' : 'ignore' });
  if (g.status !== 0) console.log('aptune: WARNING: scripts/gen-ops.ts failed; building with the committed generated files');
}

function onPath(name) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

const nvcc = process.env.CUDACXX && existsSync(process.env.CUDACXX) ? process.env.CUDACXX : onPath('nvcc');
const cmake = onPath('cmake');
const cxx = process.env.CXX ? (existsSync(process.env.CXX) ? process.env.CXX : onPath(process.env.CXX)) : onPath('c++') ?? onPath('g++') ?? onPath('clang++');
const missing = [!cmake && 'cmake', !cxx && 'a C++ compiler', strict && !nvcc && 'nvcc (set CUDACXX or put it on PATH)'].filter(Boolean);
if (missing.length) {
  console.log(`aptune: native addons not built: no ${missing.join(', no ')}; the CPU GEMM and the cuda backend stay unavailable (wasm/ref are used).`);
  process.exit(strict ? 1 : 0);
}

/** cmake-js's entry, wherever npm put it (the checkout's node_modules, or hoisted beside an installed aptune). */
function cmakeJs() {
  try { return join(dirname(createRequire(import.meta.url).resolve('cmake-js/package.json')), 'bin/cmake-js'); } catch {
    console.log('aptune: CUDA addon not built: cmake-js is not installed (npm install)');
    process.exit(strict ? 1 : 0);
  }
}

const archs = process.env.APTUNE_CUDA_ARCHS ?? '80;90';
const args = [
  cmakeJs(), 'build', '-d', root, '-O', join(root, 'build'),
  '-p', String(process.env.APTUNE_BUILD_JOBS ?? 2), ...(nvcc ? [`--CDCMAKE_CUDA_ARCHITECTURES=${archs}`,
    `--CDCMAKE_CUDA_COMPILER=${nvcc}`] : []), '-l', verbose ? 'info' : 'warn',
];
console.log(nvcc ? `aptune: building the CPU and CUDA addons (nvcc ${nvcc}, sm ${archs.replace(/;/g, ', ')}) ...`
  : 'aptune: building the CPU addon (no nvcc: the CUDA addon is skipped) ...');
const r = spawnSync(process.execPath, args, {
  cwd: root,
  env: nvcc ? { ...process.env, CUDACXX: nvcc } : process.env,
  stdio: verbose ? 'inherit' : ['ignore', 'pipe', 'pipe'],
  encoding: 'utf8',
  maxBuffer: 1 << 26,
});
const out = join(root, 'build/Release/aptune_cuda.node'), cpuOut = join(root, 'build/Release/aptune_cpu.node');
if (r.status !== 0 || !existsSync(cpuOut) || (nvcc && !existsSync(out))) {
  if (!verbose) process.stdout.write(((r.stdout ?? '') + (r.stderr ?? '')).split('\n').slice(-40).join('\n') + '\n');
  console.log(`aptune: WARNING: the native addons failed to build (exit ${r.status}); the CPU GEMM / cuda backend stay unavailable.`);
  process.exit(strict ? 1 : 0);
}
console.log(`aptune: CPU addon built: ${cpuOut}` + (nvcc ? `\naptune: CUDA addon built: ${out}` : ''));
