// What the validator reports, and the field-path notation it shares with the API server:
// `spec.disks[1].name`; map keys that are not plain words go in brackets.

export interface Problem {
  /** Field path in the API server's notation; empty for the whole document. */
  path: string;
  message: string;
}

export type Segment = string | number;

export function formatPath(segments: readonly Segment[]): string {
  let out = '';
  for (const segment of segments) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${segment}]`;
  }
  return out;
}

export function parsePath(path: string): Segment[] {
  const segments: Segment[] = [];
  for (const match of path.matchAll(/([^.[\]]+)|\[([^\]]*)\]/g)) {
    if (match[1] !== undefined) segments.push(match[1]);
    else if (match[2] !== undefined) segments.push(/^[0-9]+$/.test(match[2]) ? Number(match[2]) : match[2]);
  }
  return segments;
}

/** `prefix` + `path`, e.g. items[0] + spec.memory → items[0].spec.memory. */
export function joinPath(prefix: string, path: string): string {
  return path === '' ? prefix : path.startsWith('[') ? prefix + path : `${prefix}.${path}`;
}

/** True when `path` is `ancestor` or lies below it. */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '' || path === ancestor || path.startsWith(`${ancestor}.`) || path.startsWith(`${ancestor}[`);
}

/** A value as it appears in a message: strings quoted, containers by their kind. */
export function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object' && value !== null) return 'a mapping';
  return String(value);
}

// Characters that must never reach a terminal or a CI log raw: C0 and C1 controls (ESC starts
// terminal escape sequences, CR overwrites the line, NEL breaks it), line and paragraph separators,
// bidirectional overrides and isolates (they reorder what is shown), and lone surrogates.
const UNPRINTABLE = /[\p{Cc}\p{Zl}\p{Zp}\u200e\u200f\u202a-\u202e\u2066-\u2069\ufeff]|\p{Cs}/gu;

/**
 * `text` safe to print on one line: every character in UNPRINTABLE is written as an escape
 * (`\x1b`, `\u2028`), so a message shows a hostile value without acting on it.
 */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** At most `max` characters of `text`, with `...` when cut (for values quoted in messages). */
export function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}...`;
}
