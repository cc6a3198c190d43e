// The backbones that ship with aptune (pretrained/*.safetensors, written by `aptune pretrain --preset synth`): the
// named preset 'synth' resolves per backbone to the file, so `aptune train --pretrained synth` and the library's
// `pretrainedPath('synth', 'vilt')` need no path. Each file's safetensors metadata holds its recipe (command, seed,
// synthetic-data version, commit, the gate figures reached).
// Invariants: a preset name never shadows an existing file path (a path that exists is used as is).
// Does not: download anything; check the gates (test/train/shipped.test.ts does).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PRETRAINED_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'pretrained');

/** Named pre-trained backbones: preset -> backbone -> file name under pretrained/. */
export const PRETRAINED: Readonly<Record<string, Readonly<Record<'vilt' | 'meter', string>>>> = Object.freeze({
  synth: Object.freeze({ vilt: 'vilt-synth.safetensors', meter: 'meter-synth.safetensors' }),
});

/** The shipped file of a named preset for a backbone; throws naming what exists when the preset or file is absent. */
export function pretrainedPath(name: string, backbone: 'vilt' | 'meter'): string {
  const p = PRETRAINED[name];
  if (!p) throw new Error(`unknown pre-trained preset '${name}' (presets: ${Object.keys(PRETRAINED).join(', ')}; or give a file path)`);
  const f = path.join(PRETRAINED_DIR, p[backbone]);
  if (!fs.existsSync(f)) throw new Error(`${f}: the shipped ${backbone} backbone of preset '${name}' is missing (make it with \`aptune pretrain --preset ${name} --backbone ${backbone} --out ${f}\`)`);
  return f;
}

/** A --pretrained value: an existing path as is, else a preset name resolved for the backbone. */
export function resolvePretrained(value: string, backbone: 'vilt' | 'meter'): string {
  if (fs.existsSync(value) || !(value in PRETRAINED)) return value;
  return pretrainedPath(value, backbone);
}
