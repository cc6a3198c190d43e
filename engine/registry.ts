// Backend registry and selection. Backends register a factory with a priority (cuda > wasm > ref); a factory is
// called at most once, on first use, and may throw an Error whose message starts with "unavailable: <reason>";
// that reason is reported by backendStatus() and by every error selecting that backend.
// Selection of the default: env APTUNE_BACKEND if set (an unavailable named backend is an error, not a silent
// fallback), else the highest-priority available backend.
// Does not import any backend (engine/index.ts does, one import line per backend).

import type { Backend } from './backend.ts';

interface Entry {
  name: string;
  priority: number;
  factory: () => Backend;
  instance?: Backend;
  reason?: string; // set when the factory threw
}

const entries = new Map<string, Entry>();
let current: Backend | null = null;

export function registerBackend(name: string, factory: () => Backend, priority: number): void {
  if (entries.has(name)) throw new Error(`registerBackend: backend "${name}" registered twice`);
  entries.set(name, { name, priority, factory });
}

function instantiate(e: Entry): Backend | null {
  if (e.instance) return e.instance;
  if (e.reason !== undefined) return null;
  try {
    const b = e.factory();
    if (b.name !== e.name) throw new Error(`registerBackend: factory for "${e.name}" returned backend "${b.name}"`);
    e.instance = b;
    return b;
  } catch (err) {
    const msg = err instanceof Error ? err.message : String(err);
    e.reason = msg.startsWith('unavailable:') ? msg.slice('unavailable:'.length).trim() : `factory failed: ${msg}`;
    return null;
  }
}

/** The backend named `name` (instantiating it); throws naming the reason if it is unavailable. */
export function backendByName(name: string): Backend {
  const e = entries.get(name);
  if (!e) throw new Error(`backend "${name}" is not registered (registered: ${[...entries.keys()].join(', ') || 'none'})`);
  const b = instantiate(e);
  if (!b) throw new Error(`backend "${name}" is unavailable: ${e.reason}`);
  return b;
}

/** Names of available backends, highest priority first. */
export function backends(): string[] {
  return backendStatus().filter((s) => s.available).map((s) => s.name);
}

/** Every registered backend with its priority and, if unavailable, why. */
export function backendStatus(): { name: string; priority: number; available: boolean; reason?: string }[] {
  const list = [...entries.values()].sort((a, b) => b.priority - a.priority);
  return list.map((e) => {
    const b = instantiate(e);
    return b ? { name: e.name, priority: e.priority, available: true } : { name: e.name, priority: e.priority, available: false, reason: e.reason };
  });
}

/** Make `name` the default backend for new tensors. */
export function setBackend(name: string): Backend {
  current = backendByName(name);
  return current;
}

/** The default backend (chosen on first call: APTUNE_BACKEND, else highest-priority available). */
export function getBackend(): Backend {
  if (current) return current;
  const env = process.env.APTUNE_BACKEND;
  if (env) return setBackend(env);
  const list = [...entries.values()].sort((a, b) => b.priority - a.priority);
  for (const e of list) {
    const b = instantiate(e);
    if (b) {
      current = b;
      return b;
    }
  }
  throw new Error('no backend available: ' + list.map((e) => `${e.name} (${e.reason})`).join(', '));
}
