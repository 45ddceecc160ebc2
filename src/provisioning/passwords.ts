// Password values from Secrets, turned into what a Kickstart file may carry: a crypt(3) hash.
//
// A Secret key holds either
//   - a ready hash: SHA-512 ($6$), SHA-256 ($5$), yescrypt ($y$) or bcrypt ($2b$), e.g. from
//     `openssl passwd -6` or `mkpasswd -m yescrypt`: used as it is (surrounding whitespace, such
//     as the newline `--from-file` keeps, is dropped);
//   - or a plaintext password: hashed here with SHA-512 crypt.
// A key whose name says hash or crypt (password-hash, root.crypt) must hold a hash: anything else
// there is a mistake (a placeholder, a truncated paste), never a password to hash.
//
// The plaintext stays in this module's locals: no message names a value, only Secret, key and
// what is wrong with it. The salt of a hashed plaintext is derived from the Secret's identity
// (uid, resourceVersion, key), not drawn at random: the same Secret renders the same Kickstart
// (and the same status.renderedHash) on every reconcile and in `virtfleet ks render`, and any
// write to the Secret gives new salts. It is not derived from the password: a salt computed
// from the password would let anyone who sees the hash test guesses against the salt at the
// speed of one HMAC instead of 5000 rounds of SHA-512.
import { createHmac } from 'node:crypto';
import { CRYPT_ALPHABET, sha512Crypt } from './sha512-crypt.js';

/** The hash formats a Secret may hold, with what to call them in messages. */
export const CRYPT_FORMATS: ReadonlyArray<{ name: string; pattern: RegExp }> = [
  { name: 'SHA-512 crypt ($6$)', pattern: /^\$6\$(rounds=[1-9][0-9]{3,8}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}$/ },
  { name: 'SHA-256 crypt ($5$)', pattern: /^\$5\$(rounds=[1-9][0-9]{3,8}\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{43}$/ },
  { name: 'yescrypt ($y$)', pattern: /^\$y\$[./0-9A-Za-z]{1,64}\$[./0-9A-Za-z]{1,86}\$[./0-9A-Za-z]{43}$/ },
  { name: 'bcrypt ($2b$)', pattern: /^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./0-9A-Za-z]{53}$/ },
];

/** True when `value` is a crypt hash in one of CRYPT_FORMATS. */
export function isCryptHash(value: string): boolean {
  return CRYPT_FORMATS.some((format) => format.pattern.test(value));
}

/** A key name that promises a hash. */
const HASH_KEY = /hash|crypt/i;
/** What a crypt hash starts with: `$id$`. */
const CRYPT_PREFIX = /^\$[0-9a-z]{1,2}\$/;
/** Longer plaintexts are refused: SHA-crypt's work grows with the square of the length. */
export const MAX_PLAINTEXT_BYTES = 256;

export interface PasswordSource {
  /** `Secret NAMESPACE/NAME key KEY`, for messages. */
  label: string;
  key: string;
  /** The raw value (the Secret's data, decoded from base64). */
  value: Buffer;
  /** Seeds the salt of a hashed plaintext: the Secret's uid and resourceVersion when known. */
  saltSeed: string;
}

export type PasswordHash = { ok: true; hash: string; hashed: boolean } | { ok: false; message: string };

const HASH_FORMATS = 'SHA-512 ($6$), SHA-256 ($5$), yescrypt ($y$) or bcrypt ($2b$)';
const MAKE_HASH = 'e.g. from `openssl passwd -6` or `mkpasswd -m yescrypt`';

/** The crypt hash for a Secret value, hashing a plaintext; never echoes the value. */
export function passwordHash(source: PasswordSource): PasswordHash {
  const { label, key, value } = source;
  if (value.length === 0) return refuse(`${label} is empty; put a crypt hash (${MAKE_HASH}) or a password there`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(value);
  } catch {
    return refuse(`${label} is not UTF-8 text`);
  }
  const trimmed = text.trim();
  if (isCryptHash(trimmed)) return { ok: true, hash: trimmed, hashed: false };
  if (HASH_KEY.test(key)) {
    return refuse(
      `${label} holds no crypt hash (${HASH_FORMATS}; ${MAKE_HASH}). A key whose name says hash or crypt must hold one; ` +
        'to have the controller hash a plaintext password, put it under a key such as password',
    );
  }
  if (CRYPT_PREFIX.test(trimmed)) {
    return refuse(
      `${label} starts like a crypt hash but is not one virtfleet accepts (${HASH_FORMATS}; MD5 $1$ and DES are too weak); make one ${MAKE_HASH}`,
    );
  }
  if (/[\r\n]$/.test(text)) {
    return refuse(
      `${label} ends with a line break, which would be part of the password (kubectl create secret --from-file keeps it); store it without (--from-literal, or printf '%s')`,
    );
  }
  if (/[\x00-\x1f\x7f-\x9f]/.test(text))
    return refuse(`${label} contains control characters, which cannot be typed at a login prompt`);
  if (value.length > MAX_PLAINTEXT_BYTES) return refuse(`${label} is longer than ${MAX_PLAINTEXT_BYTES} bytes`);
  return { ok: true, hash: sha512Crypt(value, derivedSalt(source.saltSeed, key)), hashed: true };
}

/** 16 characters of crypt's alphabet from HMAC-SHA-256 of the Secret's identity and the key. */
export function derivedSalt(seed: string, key: string): string {
  const digest = createHmac('sha256', 'virtfleet.io/kickstart-password-salt').update(`${seed}\u0000${key}`).digest();
  let salt = '';
  for (let i = 0; i < 16; i++) salt += CRYPT_ALPHABET[digest[i]! & 0x3f];
  return salt;
}

function refuse(message: string): PasswordHash {
  return { ok: false, message };
}
