// SHA-512 crypt ($6$), as glibc's crypt(3), `openssl passwd -6` and Python's crypt/passlib
// compute it: Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" (2008), on node:crypto's
// SHA-512.
//
// Why not a package: the npm ones (sha512crypt-node, sha512-crypt-ts) carry a 2009 pure-JS
// SHA-512 on "binary strings", are unmaintained, and one ships mocha as a runtime dependency;
// crypt3 is an unmaintained native binding to the C library's crypt. The algorithm is a few
// dozen lines over a SHA-512 we already trust; test/unit/kickstart-passwords.test.ts checks it
// against the specification's vectors and against `openssl passwd -6`.
import { createHash, type Hash } from 'node:crypto';

/** The 64 characters of crypt's base64, in order. */
export const CRYPT_ALPHABET = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export const DEFAULT_ROUNDS = 5000;
const MIN_ROUNDS = 1000;
const MAX_ROUNDS = 999_999_999;
const MAX_SALT = 16;

// The order in which the 64 digest bytes are encoded, three at a time (the last one alone).
const ORDER: ReadonlyArray<readonly [number, number, number]> = [
  [0, 21, 42],
  [22, 43, 1],
  [44, 2, 23],
  [3, 24, 45],
  [25, 46, 4],
  [47, 5, 26],
  [6, 27, 48],
  [28, 49, 7],
  [50, 8, 29],
  [9, 30, 51],
  [31, 52, 10],
  [53, 11, 32],
  [12, 33, 54],
  [34, 55, 13],
  [56, 14, 35],
  [15, 36, 57],
  [37, 58, 16],
  [59, 17, 38],
  [18, 39, 60],
  [40, 61, 19],
  [62, 20, 41],
];

/**
 * `$6$[rounds=N$]salt$hash` for `password` (bytes, or a string taken as UTF-8). The salt is cut
 * to 16 characters, like glibc does; rounds are clamped to 1000..999999999 and written into the
 * result only when they differ from the default 5000, so the output equals `openssl passwd -6`.
 */
export function sha512Crypt(password: Buffer | string, salt: string, rounds: number = DEFAULT_ROUNDS): string {
  if (salt.includes('$') || salt.includes(':') || /[\s\x00-\x1f]/.test(salt))
    throw new Error('a crypt salt may not contain "$", ":" or whitespace');
  const p = typeof password === 'string' ? Buffer.from(password, 'utf8') : password;
  const s = Buffer.from(salt.slice(0, MAX_SALT), 'utf8');
  const r = Math.min(MAX_ROUNDS, Math.max(MIN_ROUNDS, Math.floor(rounds)));

  const b = sha512(p, s, p);
  const a = createHash('sha512').update(p).update(s);
  addRepeated(a, b, p.length);
  for (let n = p.length; n > 0; n >>= 1) a.update(n & 1 ? b : p);
  let c = a.digest();

  const pBytes = repeatTo(sha512(...Array<Buffer>(p.length).fill(p)), p.length);
  const sBytes = repeatTo(sha512(...Array<Buffer>(16 + c[0]!).fill(s)), s.length);

  for (let i = 0; i < r; i++) {
    const round = createHash('sha512');
    round.update(i & 1 ? pBytes : c);
    if (i % 3 !== 0) round.update(sBytes);
    if (i % 7 !== 0) round.update(pBytes);
    round.update(i & 1 ? c : pBytes);
    c = round.digest();
  }

  let encoded = '';
  for (const [x, y, z] of ORDER) encoded += encode24(c[x]!, c[y]!, c[z]!, 4);
  encoded += encode24(0, 0, c[63]!, 2);
  const prefix = r === DEFAULT_ROUNDS ? '$6$' : `$6$rounds=${r}$`;
  return `${prefix}${s.toString('utf8')}$${encoded}`;
}

/** crypt's base64 of `n` characters from three bytes, least significant six bits first. */
export function encode24(high: number, middle: number, low: number, n: number): string {
  let word = (high << 16) | (middle << 8) | low;
  let out = '';
  for (let i = 0; i < n; i++) {
    out += CRYPT_ALPHABET[word & 0x3f];
    word >>>= 6;
  }
  return out;
}

function sha512(...parts: Buffer[]): Buffer {
  const hash = createHash('sha512');
  for (const part of parts) hash.update(part);
  return hash.digest();
}

/** Adds `length` bytes of `digest` to `hash`: the whole digest per 64 bytes, then a prefix of it. */
function addRepeated(hash: Hash, digest: Buffer, length: number): void {
  let left = length;
  for (; left > 64; left -= 64) hash.update(digest);
  hash.update(digest.subarray(0, left));
}

/** `digest` repeated, then cut, to `length` bytes. */
function repeatTo(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = digest[i % 64]!;
  return out;
}
