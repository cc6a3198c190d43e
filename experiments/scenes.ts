// Synthetic scenes of coloured shapes: the scene model, random generation from a seeded Rng, SVG rendering through
// sharp to PNG, and *claims* (atomic statements about a scene) with an exact truth check. Captions, statements and
// hard negatives of the synthetic benchmark are built from claims, so every text can be verified against its scene.
// Does not: write tables or pick questions (synthetic.ts does), depend on the engine.
// Invariants: a scene has at most one object per (colour, shape) pair and per grid cell; positions are grid cells
// (3x3), so "left of" / "above" and the position words are exact; `holds(scene, claim)` is the single source of
// truth for every label the generator emits.
import sharp from 'sharp';
import { Rng } from '../data/rng.ts';

export const COLORS = ['red', 'green', 'blue', 'yellow', 'purple', 'orange'] as const;
export const COLOR_RGB: readonly [number, number, number][] = [
  [220, 40, 40], [40, 170, 60], [40, 80, 220], [235, 215, 40], [150, 60, 190], [245, 140, 30],
];
export const SHAPES = ['circle', 'square', 'triangle', 'diamond'] as const;
export const SIZES = ['small', 'large'] as const;
export const COLUMNS = ['left', 'center', 'right'] as const;
export const ROWS = ['top', 'middle', 'bottom'] as const;
export const GRID = 3;

export interface SceneObject {
  color: number; // index into COLORS
  shape: number; // index into SHAPES
  size: number; // 0 small, 1 large
  cell: number; // row * 3 + col
  /** render-only jitter: centre offset in cell units and colour offset */
  dx: number; dy: number; tint: [number, number, number];
}
export interface Scene {
  objects: SceneObject[];
  background: [number, number, number];
}

export const colOf = (o: SceneObject): number => o.cell % GRID;
export const rowOf = (o: SceneObject): number => Math.floor(o.cell / GRID);

/** A random scene with between minObjects and maxObjects objects (distinct cells, distinct colour-shape pairs). */
export function randomScene(rng: Rng, minObjects = 2, maxObjects = 5): Scene {
  const n = minObjects + rng.int(maxObjects - minObjects + 1);
  const cells = rng.shuffle([...Array(GRID * GRID).keys()]).slice(0, n);
  const pairs = rng.shuffle([...Array(COLORS.length * SHAPES.length).keys()]).slice(0, n);
  const objects = cells.map((cell, i) => ({
    color: Math.floor(pairs[i] / SHAPES.length), shape: pairs[i] % SHAPES.length, size: rng.int(2), cell,
    dx: rng.uniform(-0.08, 0.08), dy: rng.uniform(-0.08, 0.08),
    tint: [rng.int(25) - 12, rng.int(25) - 12, rng.int(25) - 12] as [number, number, number],
  }));
  const g = 200 + rng.int(40);
  return { objects, background: [g + rng.int(11) - 5, g + rng.int(11) - 5, g + rng.int(11) - 5] };
}

const clamp8 = (v: number): number => Math.max(0, Math.min(255, Math.round(v)));

/** SVG text of a scene at `size` x `size` pixels. */
export function sceneSvg(scene: Scene, size: number): string {
  const c = size / GRID;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${size}">`,
    `<rect width="${size}" height="${size}" fill="rgb(${scene.background.join(',')})"/>`];
  for (const o of scene.objects) {
    const rgb = COLOR_RGB[o.color].map((v, i) => clamp8(v + o.tint[i])).join(',');
    const cx = (colOf(o) + 0.5 + o.dx) * c, cy = (rowOf(o) + 0.5 + o.dy) * c;
    const h = (o.size ? 0.84 : 0.48) * c / 2; // half extent
    const f = `fill="rgb(${rgb})"`;
    const fx = (v: number) => v.toFixed(2);
    switch (SHAPES[o.shape]) {
      case 'circle': parts.push(`<circle cx="${fx(cx)}" cy="${fx(cy)}" r="${fx(h)}" ${f}/>`); break;
      case 'square': parts.push(`<rect x="${fx(cx - h * 0.9)}" y="${fx(cy - h * 0.9)}" width="${fx(1.8 * h)}" height="${fx(1.8 * h)}" ${f}/>`); break;
      case 'triangle': parts.push(`<polygon points="${fx(cx)},${fx(cy - h)} ${fx(cx + h)},${fx(cy + h * 0.85)} ${fx(cx - h)},${fx(cy + h * 0.85)}" ${f}/>`); break;
      case 'diamond': parts.push(`<polygon points="${fx(cx)},${fx(cy - h)} ${fx(cx + h * 0.8)},${fx(cy)} ${fx(cx)},${fx(cy + h)} ${fx(cx - h * 0.8)},${fx(cy)}" ${f}/>`); break;
    }
  }
  parts.push('</svg>');
  return parts.join('');
}

/** PNG bytes of a scene rendered by sharp from its SVG. */
export async function renderScene(scene: Scene, size: number): Promise<Uint8Array> {
  const buf = await sharp(Buffer.from(sceneSvg(scene, size))).removeAlpha().png({ compressionLevel: 2, adaptiveFiltering: false }).toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/** Render many scenes with bounded concurrency, results in input order. */
export async function renderScenes(scenes: readonly Scene[], size: number, concurrency = 4): Promise<Uint8Array[]> {
  const out: Uint8Array[] = new Array(scenes.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (next < scenes.length) { const i = next++; out[i] = await renderScene(scenes[i], size); }
  }));
  return out;
}

/** Compact JSON of the semantic part of a scene (no render jitter), stored beside images for verification. */
export function sceneJson(scene: Scene): string {
  return JSON.stringify(scene.objects.map((o) => ({ color: COLORS[o.color], shape: SHAPES[o.shape], size: SIZES[o.size], row: rowOf(o), col: colOf(o) })));
}

// ---------------------------------------------------------------------------------------------------------------
// Claims

/** A reference to an object by attributes (undefined = any). */
export interface ObjRef { color?: number; shape?: number; size?: number; row?: number; col?: number }
export type Relation = 'left of' | 'right of' | 'above' | 'below';
export type Claim =
  | { kind: 'exists'; obj: ObjRef }
  | { kind: 'count'; obj: ObjRef; n: number }
  | { kind: 'rel'; a: ObjRef; rel: Relation; b: ObjRef }
  | { kind: 'total'; n: number };

export function matches(o: SceneObject, r: ObjRef): boolean {
  return (r.color === undefined || o.color === r.color) && (r.shape === undefined || o.shape === r.shape)
    && (r.size === undefined || o.size === r.size) && (r.row === undefined || rowOf(o) === r.row)
    && (r.col === undefined || colOf(o) === r.col);
}
export function find(scene: Scene, r: ObjRef): SceneObject[] { return scene.objects.filter((o) => matches(o, r)); }

export function relationHolds(a: SceneObject, rel: Relation, b: SceneObject): boolean {
  switch (rel) {
    case 'left of': return colOf(a) < colOf(b);
    case 'right of': return colOf(a) > colOf(b);
    case 'above': return rowOf(a) < rowOf(b);
    case 'below': return rowOf(a) > rowOf(b);
  }
}

/** Exact truth of a claim in a scene. A relation claim needs both referents to exist uniquely. */
export function holds(scene: Scene, c: Claim): boolean {
  switch (c.kind) {
    case 'exists': return find(scene, c.obj).length > 0;
    case 'count': return find(scene, c.obj).length === c.n;
    case 'total': return scene.objects.length === c.n;
    case 'rel': {
      const A = find(scene, c.a), B = find(scene, c.b);
      return A.length === 1 && B.length === 1 && relationHolds(A[0], c.rel, B[0]);
    }
  }
}

const NUMBER_WORD = ['no', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
export const numberWord = (n: number): string => NUMBER_WORD[n] ?? String(n);
const plural = (s: string, n: number): string => (n === 1 ? s : s + 's');

/** Noun phrase of an object reference without article: "small red circle at the top left". */
export function objPhrase(r: ObjRef, n = 1): string {
  const w: string[] = [];
  if (r.size !== undefined) w.push(SIZES[r.size]);
  if (r.color !== undefined) w.push(COLORS[r.color]);
  w.push(plural(r.shape !== undefined ? SHAPES[r.shape] : 'object', n));
  let s = w.join(' ');
  if (r.row !== undefined && r.col !== undefined) {
    s += r.row === 1 && r.col === 1 ? ' at the center' : ` at the ${r.row === 1 ? 'middle' : ROWS[r.row]} ${COLUMNS[r.col]}`;
  } else if (r.row !== undefined) {
    s += r.row === 1 ? ' in the middle row' : ` at the ${ROWS[r.row]}`;
  } else if (r.col !== undefined) {
    s += r.col === 1 ? ' in the center column' : ` on the ${COLUMNS[r.col]}`;
  }
  return s;
}

export const article = (phrase: string): string => (/^[aeiou]/.test(phrase) ? 'an ' : 'a ') + phrase;

/** Caption text of one claim. */
export function claimText(c: Claim): string {
  switch (c.kind) {
    case 'exists': return article(objPhrase(c.obj));
    case 'count': return `${numberWord(c.n)} ${objPhrase(c.obj, c.n)}`;
    case 'total': return `${numberWord(c.n)} ${plural('shape', c.n)} in total`;
    case 'rel': return `${article(objPhrase(c.a))} ${c.rel} ${article(objPhrase(c.b))}`;
  }
}

/** A caption of several claims: "a red circle, two squares and a blue diamond above a green circle". */
export function captionText(claims: readonly Claim[]): string {
  const t = claims.map(claimText);
  return t.length <= 1 ? t.join('') : `${t.slice(0, -1).join(', ')} and ${t[t.length - 1]}`;
}

/**
 * A perturbation of one claim (one content word changed) that is FALSE in the scene, or null if none was found
 * in a few tries. Used for verified hard negatives.
 */
export function falsify(scene: Scene, c: Claim, rng: Rng): Claim | null {
  for (let attempt = 0; attempt < 12; attempt++) {
    let d: Claim;
    switch (c.kind) {
      case 'exists': case 'count': {
        const obj = { ...c.obj };
        const keys = (Object.keys(obj) as (keyof ObjRef)[]).filter((k) => obj[k] !== undefined);
        const k = keys.length ? rng.pick(keys) : 'shape';
        const range = k === 'color' ? COLORS.length : k === 'shape' ? SHAPES.length : k === 'size' ? 2 : GRID;
        obj[k] = ((obj[k] ?? 0) + 1 + rng.int(range - 1)) % range;
        d = c.kind === 'exists' ? { kind: 'exists', obj } : (rng.next() < 0.5 ? { kind: 'count', obj, n: c.n } : { kind: 'count', obj: c.obj, n: (c.n + 1 + rng.int(3)) % 5 });
        break;
      }
      case 'total': d = { kind: 'total', n: Math.max(1, (c.n + 1 + rng.int(3)) % 7) }; break;
      case 'rel': {
        const flip: Record<Relation, Relation> = { 'left of': 'right of', 'right of': 'left of', above: 'below', below: 'above' };
        d = rng.next() < 0.6 ? { kind: 'rel', a: c.a, rel: flip[c.rel], b: c.b } : { kind: 'rel', a: c.b, rel: c.rel, b: c.a };
        break;
      }
    }
    if (!holds(scene, d)) return d;
  }
  return null;
}
