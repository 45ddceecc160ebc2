// Generators of hostile values for the property-based tests (properties-*.test.ts): strings
// made of the characters that break formats (control characters, every line break Python and
// JavaScript know, bidi controls, lone surrogates, quotes, '&', '<', '%', '$', '#', '\'), mixed
// with the characters a field legitimately holds, and very long strings; and quantities near
// the bounds the API and the renderers check.
import fc from 'fast-check';

/** One fixed seed for every property; a failure prints it with the counterexample and its path. */
export const SEED = 20261207;
/** Runs per property: a few hundred, so the unit tier stays fast. */
export const RUNS = 300;
export const PARAMS = { seed: SEED, numRuns: RUNS, verbose: 1 } as const;

/** Characters that have a meaning in XML, Kickstart/shlex, iPXE, shells or URLs. */
const SYNTAX = [...'"\'&<>%$#\\`|;{}()[]*!?=,:/@+~^ -._'];
/** C0 and C1 controls, DEL, and the Unicode line breaks and separators. */
const BREAKS = [
  '\n',
  '\r',
  '\t',
  '\v',
  '\f',
  '\0',
  '\x1c',
  '\x1d',
  '\x1e',
  '\x1f',
  '\x7f',
  '\x85',
  '\x9b',
  '\u2028',
  '\u2029',
];
/** Bidi controls, BOM, non-breaking and other Unicode spaces, zero-width characters. */
const INVISIBLE = [
  '\ufffe',
  '\uffff',
  '\u202e',
  '\u202d',
  '\u2066',
  '\u2069',
  '\u200e',
  '\u200f',
  '\ufeff',
  '\u00a0',
  '\u3000',
  '\u1680',
  '\u200b',
  '\u180e',
];
/** Lone surrogates and an astral character (two UTF-16 units, one code point). */
const SURROGATES = ['\ud800', '\udfff', '\ud83d', '\u{1F600}', '\u{10FFFF}'];

export const hostileChar = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...SYNTAX) },
  { weight: 3, arbitrary: fc.constantFrom(...BREAKS) },
  { weight: 2, arbitrary: fc.constantFrom(...INVISIBLE) },
  { weight: 2, arbitrary: fc.constantFrom(...SURROGATES) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
);

/** Characters of the legitimate alphabet of a field, so that hostile strings are often "almost valid". */
export function hostileString(legit: string, options: { maxLength?: number } = {}): fc.Arbitrary<string> {
  const alphabet = fc.constantFrom(...legit);
  const unit = fc.oneof({ weight: 6, arbitrary: alphabet }, { weight: 2, arbitrary: hostileChar });
  return fc.array(unit, { maxLength: options.maxLength ?? 24 }).map((chars) => chars.join(''));
}

/**
 * A value built around a valid one: the valid value as is, with hostile characters inserted,
 * prepended or appended, cut, or repeated until it is very long (near and past length limits,
 * also in astral characters that count once as a code point and twice as UTF-16 units).
 */
export function aroundValid(valid: fc.Arbitrary<string>, legit: string, limit: number): fc.Arbitrary<string> {
  const insert = fc
    .tuple(valid, fc.nat(), hostileString(legit, { maxLength: 4 }))
    .map(([v, at, extra]) => v.slice(0, at % (v.length + 1)) + extra + v.slice(at % (v.length + 1)));
  const long = fc
    .tuple(
      valid,
      fc.constantFrom(legit[0] ?? 'a', '\u{1F600}', 'é', '\ud800'),
      fc.integer({ min: -3, max: 3 }),
      fc.constantFrom(1, 0.5),
    )
    .map(([v, pad, delta, scale]) => {
      const target = Math.max(0, Math.floor(limit * scale) + delta - v.length);
      return v + pad.repeat(pad.length === 2 ? Math.ceil(target / 2) : target);
    });
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    { weight: 4, arbitrary: insert },
    { weight: 2, arbitrary: hostileString(legit) },
    { weight: 1, arbitrary: long },
    { weight: 1, arbitrary: fc.constantFrom('', ' ', '-x', '%end', '..', '/', '$(reboot)', '${x}') },
  );
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const DIGITS = '0123456789';

/** A DNS label (RFC 1123) of 1..max characters. */
export function dnsLabelArb(max = 63): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.constantFrom(...(LOWER + DIGITS)),
      fc.array(fc.constantFrom(...`${LOWER}${DIGITS}-`), { maxLength: max - 2 }),
      fc.constantFrom(...(LOWER + DIGITS)),
    )
    .map(([a, mid, z]) => (mid.length === 0 && a === z ? a : a + mid.join('') + z).slice(0, max));
}

/** An absolute path of plain file-name characters. */
export const pathArb = fc
  .array(
    fc.array(fc.constantFrom(...`${LOWER}${DIGITS}._+-ABC`), { minLength: 1, maxLength: 12 }).map((c) => c.join('')),
    { minLength: 1, maxLength: 5 },
  )
  .map((segments) => `/${segments.join('/')}`);

/** Kubernetes quantities: well-formed ones of every notation, near the given byte bounds, and malformed ones. */
export function quantityArb(boundsBytes: bigint[]): fc.Arbitrary<string> {
  const suffix = fc.constantFrom(
    '',
    'Ki',
    'Mi',
    'Gi',
    'Ti',
    'Pi',
    'Ei',
    'k',
    'M',
    'G',
    'T',
    'P',
    'E',
    'm',
    'u',
    'n',
    'e3',
    'E+2',
    'e-2',
    'e99',
  );
  const plain = fc
    .tuple(
      fc.constantFrom('', '+'),
      fc.bigInt({ min: 0n, max: 10n ** 20n }),
      fc.option(fc.nat({ max: 999 }), { nil: undefined }),
      suffix,
    )
    .map(([sign, n, frac, s]) => `${sign}${n}${frac === undefined ? '' : `.${frac}`}${s}`);
  // Whole bytes near a bound, written in bytes, in Ki (possibly fractional), or in milli-bytes.
  const near = fc
    .tuple(fc.constantFrom(...boundsBytes), fc.integer({ min: -2048, max: 2048 }), fc.constantFrom('bytes', 'Ki', 'm'))
    .map(([bound, delta, how]) => {
      const bytes = bound + BigInt(delta);
      if (how === 'Ki')
        return `${bytes / 1024n}${bytes % 1024n === 0n ? '' : `.${String(((bytes % 1024n) * 10000n) / 1024n).padStart(4, '0')}`}Ki`;
      if (how === 'm') return `${bytes * 1000n + BigInt(delta % 7)}m`;
      return String(bytes);
    });
  const malformed = hostileString(`${DIGITS}.KMGTPEikmune+-`, { maxLength: 12 });
  return fc.oneof({ weight: 3, arbitrary: plain }, { weight: 4, arbitrary: near }, { weight: 2, arbitrary: malformed });
}
