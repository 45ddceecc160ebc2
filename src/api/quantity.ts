// Kubernetes resource quantities ("512Mi", "2Gi", "1.5G", "100m", "1e3"), parsed exactly.
//
// The API server compares quantities in CEL rules with `quantity(x).compareTo(...)`; the offline
// validator must reach the same verdict, so values are kept as exact rationals
// (digits × 10^exp10 × 2^exp2) rather than floats.

/**
 * The API server's quantity syntax, narrowed: no sign (sizes are never negative) and a decimal
 * exponent of at most two digits. The upstream pattern allows "1e999999999", which passes the
 * schema and then keeps the API server's CEL quantity() busy for minutes (seen on 1.36);
 * CEL rules only run once the schema accepts the value, so the pattern is the guard.
 */
export const QUANTITY_PATTERN = '^\\+?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]{1,2})?$';

export interface Quantity {
  negative: boolean;
  digits: bigint;
  exp10: number;
  exp2: number;
}

const BINARY_SUFFIX: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL_SUFFIX: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
// Exponents this large make a value absurd for any bound we check; refusing them keeps BigInt
// arithmetic cheap (a quantity like "1e999999999" would otherwise allocate a huge number).
const MAX_EXPONENT = 1000;

const QUANTITY_SYNTAX = /^([+-]?)([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?[0-9]+)?$/;

/** Parses a quantity like the API server's resource.ParseQuantity; undefined when it would refuse it. */
export function parseQuantity(text: string): Quantity | undefined {
  const match = QUANTITY_SYNTAX.exec(text);
  if (!match) return undefined;
  const [, sign = '', number = '', suffix = ''] = match;
  const [whole = '', fraction = ''] = number.split('.');
  const digits = BigInt((whole + fraction).replace(/^0+(?=.)/, '') || '0');
  let exp10 = -fraction.length;
  let exp2 = 0;
  if (suffix in BINARY_SUFFIX) {
    exp2 = BINARY_SUFFIX[suffix] ?? 0;
  } else if (suffix in DECIMAL_SUFFIX) {
    exp10 += DECIMAL_SUFFIX[suffix] ?? 0;
  } else {
    const exponent = Number(suffix.slice(1));
    if (!Number.isSafeInteger(exponent) || Math.abs(exponent) > MAX_EXPONENT) return undefined;
    exp10 += exponent;
  }
  return { negative: sign === '-' && digits !== 0n, digits, exp10, exp2 };
}

export function isQuantity(text: string): boolean {
  return parseQuantity(text) !== undefined;
}

/** -1, 0 or 1, like CEL's quantity(a).compareTo(quantity(b)). */
export function compareQuantities(a: Quantity, b: Quantity): number {
  if (a.negative !== b.negative) return a.negative ? -1 : 1;
  const exp10 = Math.min(a.exp10, b.exp10);
  const exp2 = Math.min(a.exp2, b.exp2);
  const scaled = (q: Quantity): bigint => q.digits * 10n ** BigInt(q.exp10 - exp10) * 2n ** BigInt(q.exp2 - exp2);
  const [x, y] = [scaled(a), scaled(b)];
  const order = x === y ? 0 : x < y ? -1 : 1;
  return a.negative ? -order : order;
}

/** True when `text` is a quantity within [min, max]; false when it is outside or not a quantity. */
export function quantityWithin(text: string, min?: string, max?: string): boolean {
  const value = parseQuantity(text);
  if (!value) return false;
  if (min !== undefined && compareQuantities(value, mustParse(min)) < 0) return false;
  if (max !== undefined && compareQuantities(value, mustParse(max)) > 0) return false;
  return true;
}

/** The value as a plain number (bytes for memory and sizes); approximate for huge or fractional values. */
export function quantityToNumber(text: string): number {
  const q = mustParse(text);
  const magnitude = Number(q.digits) * 10 ** q.exp10 * 2 ** q.exp2;
  return q.negative ? -magnitude : magnitude;
}

function mustParse(text: string): Quantity {
  const q = parseQuantity(text);
  if (!q) throw new Error(`not a Kubernetes quantity: ${JSON.stringify(text)}`);
  return q;
}
