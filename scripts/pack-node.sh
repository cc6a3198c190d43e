#!/usr/bin/env bash
# Packs what a bare GPU machine needs to run scripts/gpu-check.sh into the git-ignored folder .node/:
#   .node/node.xz          this machine's node binary (x86-64, needs only glibc and libstdc++)
#   .node/modules.tar.xz   the node_modules closure of tsx, uvu, cmake-js, node-addon-api, node-api-headers,
#                          plus the built WebAssembly kernels (engine/assembly/build/*.wasm) for the wasm peer.
# Does not: build anything or touch git. Carry `.node` in the device call (run's `carry: [".node"]`).
# Invariants: files are written to a temp name and renamed; the closure follows dependencies and installed
# optionalDependencies (esbuild's platform package) from package.json files, so nothing is fetched on the GPU side.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "pack-node: node not found" >&2; exit 1; }
command -v xz >/dev/null || { echo "pack-node: xz not found" >&2; exit 1; }
mkdir -p .node
xz -T0 -6 -c "$(readlink -f "$(command -v node)")" > .node/node.xz.tmp && mv .node/node.xz.tmp .node/node.xz

node - > .node/modules.list <<'JS'
const fs = require('fs'), path = require('path');
const roots = ['tsx', 'uvu', 'cmake-js', 'node-addon-api', 'node-api-headers'];
const seen = new Set();
function find(name, from) {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const p = path.join(dir, 'node_modules', name);
    if (fs.existsSync(path.join(p, 'package.json'))) return p;
    if (dir === path.dirname(dir)) return null;
  }
}
function visit(name, from, optional) {
  const p = find(name, from);
  if (!p) { if (!optional) throw new Error('missing package ' + name); return; }
  if (seen.has(p)) return;
  seen.add(p);
  const pj = JSON.parse(fs.readFileSync(path.join(p, 'package.json'), 'utf8'));
  for (const d of Object.keys(pj.dependencies || {})) visit(d, p, false);
  for (const d of Object.keys(pj.optionalDependencies || {})) visit(d, p, true);
}
for (const r of roots) visit(r, process.cwd(), false);
for (const p of [...seen].sort()) console.log(path.relative(process.cwd(), p));
JS
ls engine/assembly/build/*.wasm >> .node/modules.list 2>/dev/null || echo "pack-node: no built wasm kernels (npm run build:wasm); the GPU check will compare with ref" >&2
tar -cf - -T .node/modules.list | xz -T0 -6 > .node/modules.tar.xz.tmp && mv .node/modules.tar.xz.tmp .node/modules.tar.xz
echo "pack-node: $(wc -l < .node/modules.list) paths; $(du -h .node/node.xz | cut -f1) node, $(du -h .node/modules.tar.xz | cut -f1) modules"
