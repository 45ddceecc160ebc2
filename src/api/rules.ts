// Cross-field validation rules, declared once for two checkers.
//
// Each rule sits on the schema node it constrains and carries both a CEL expression (emitted into
// the CRD as `x-kubernetes-validations`, evaluated by the API server) and a TypeScript predicate
// of the same meaning (evaluated by `virtfleet validate`). Keeping them side by side, on the same
// node, is what stops them drifting apart: a reviewer sees both in one place, and the integration
// tests apply every invalid fixture to a real API server and check it gives the same field path.
import type { Static, TSchema } from '@sinclair/typebox';

/** How the API server words the error (its field.ErrorType); it defaults to FieldValueInvalid. */
export type RuleReason = 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';

export interface Rule<Self = unknown> {
  /** Stable name for tests and docs; never sent to the API server. */
  id: string;
  /** CEL expression with `self` bound to the node the rule sits on; true means valid. */
  cel: string;
  /** Shown to the user by both checkers: say what is wrong and how to fix it. */
  message: string;
  /**
   * Where the error points, relative to the node (e.g. `.xen`); the API server appends it to the
   * node's path, and so does the validator. Must name a field declared in the schema.
   */
  fieldPath?: string;
  reason?: RuleReason;
  /** The TypeScript twin of `cel`: receives the node after defaulting, exactly as CEL would. */
  holds(self: Self): boolean;
}

/** The schema keyword the API server reads rules from. */
export const RULES_KEYWORD = 'x-kubernetes-validations';

/** The form of a rule inside a CRD. */
export interface CrdValidationRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: RuleReason;
}

/**
 * Returns `schema` with `rules` attached. `Self` is the node's static type as the API server
 * stores it (defaults applied), so predicates can read defaulted fields without fallbacks.
 */
export function withRules<T extends TSchema>(schema: T, rules: Rule<Static<T>>[]): T {
  return { ...schema, [RULES_KEYWORD]: [...rulesOf(schema), ...rules] };
}

/** The rules attached to one schema node (not its children). */
export function rulesOf(schema: object): Rule[] {
  const rules = (schema as Record<string, unknown>)[RULES_KEYWORD];
  return Array.isArray(rules) ? (rules as Rule[]) : [];
}

export function toCrdRule(rule: Rule): CrdValidationRule {
  const out: CrdValidationRule = { rule: rule.cel, message: rule.message };
  if (rule.fieldPath !== undefined) out.fieldPath = rule.fieldPath;
  if (rule.reason !== undefined) out.reason = rule.reason;
  return out;
}

/** A rule found in a resource's schema, with the node path it sits on (`spec.disks[]`). */
export interface LocatedRule {
  at: string;
  rule: Rule;
}

/** Every rule under `schema`, depth first; `[]` marks list items and `{}` map values. */
export function collectRules(schema: object, at = ''): LocatedRule[] {
  const node = schema as Record<string, unknown>;
  const found: LocatedRule[] = rulesOf(node).map((rule) => ({ at, rule }));
  const properties = node.properties as Record<string, object> | undefined;
  for (const [name, child] of Object.entries(properties ?? {})) {
    found.push(...collectRules(child, at ? `${at}.${name}` : name));
  }
  if (isObject(node.items)) found.push(...collectRules(node.items, `${at}[]`));
  if (isObject(node.additionalProperties)) found.push(...collectRules(node.additionalProperties, `${at}{}`));
  return found;
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null;
}

// ---------------------------------------------------------------------------------------------
// Building blocks used by more than one resource.

/** Counts how many of the given optional fields are set; CEL twin of `(has(self.a) ? 1 : 0) + ...`. */
export function countSet(self: object, fields: readonly string[]): number {
  return fields.filter((field) => (self as Record<string, unknown>)[field] !== undefined).length;
}

/** CEL for "exactly one of these fields is set". */
export function celExactlyOne(fields: readonly string[]): string {
  return `${fields.map((field) => `(has(self.${field}) ? 1 : 0)`).join(' + ')} == 1`;
}

/**
 * A regular expression as a CEL string literal, for `self.matches(...)`: CEL's literal undoes one
 * level of backslashes, RE2 reads the rest. Use only patterns that mean the same in RE2 and in
 * JavaScript with the `u` flag, so the twin can run the very same text.
 */
export function celRegex(pattern: string): string {
  if (pattern.includes("'")) throw new Error(`celRegex: quote in ${pattern}`);
  return `'${pattern.replace(/\\/g, '\\\\')}'`;
}
