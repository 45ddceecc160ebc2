// The schema half of validation: ajv on the very schema the CRD carries (objects closed, as
// strict field validation closes them), with defaults applied on the way, and each ajv error
// turned into words that name the field and say what would be accepted.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { patternHint, type ResourceDefinition } from './common.js';
import { KUBERNETES_EXTENSIONS, objectSchema, toStructural, type JsonSchema } from './crd.js';
import { describe, formatPath, type Problem, type Segment } from './problems.js';

type Json = Record<string, unknown>;

/**
 * Checks `data` (an object without status, nulls dropped) against the resource's schema and
 * fills in its defaults, in place, as the API server would before it runs CEL rules.
 */
export function checkSchema(resource: ResourceDefinition, data: Json): Problem[] {
  const validate = compiled(resource);
  validate(data);
  return toProblems(validate.errors ?? [], data);
}

let ajv: Ajv | undefined;
const validators = new Map<string, ValidateFunction>();

function compiled(resource: ResourceDefinition): ValidateFunction {
  let validate = validators.get(resource.kind);
  if (!validate) {
    ajv ??= createAjv();
    validate = ajv.compile(closeObjects(toStructural(objectSchema(resource))));
    validators.set(resource.kind, validate);
  }
  return validate;
}

function createAjv(): Ajv {
  const instance = new Ajv({ allErrors: true, useDefaults: true, verbose: true, strict: true });
  addFormats.default(instance, ['date-time']);
  instance.addFormat('int32', {
    type: 'number',
    validate: (n: number) => Number.isInteger(n) && Math.abs(n) < 2 ** 31,
  });
  instance.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  // Kubernetes extensions: list-map keys and rules are enforced in validate.ts; the others are
  // annotations for the API server.
  for (const keyword of KUBERNETES_EXTENSIONS) {
    instance.addKeyword({ keyword });
  }
  return instance;
}

/** Strict field validation: an object with declared properties accepts no others. */
function closeObjects(node: JsonSchema): JsonSchema {
  const out: JsonSchema = { ...node };
  if (isRecord(node.properties)) {
    out.properties = Object.fromEntries(
      Object.entries(node.properties).map(([k, v]) => [k, closeObjects(v as JsonSchema)]),
    );
    if (node.additionalProperties === undefined && !node['x-kubernetes-preserve-unknown-fields'])
      out.additionalProperties = false;
  }
  if (isRecord(node.items)) out.items = closeObjects(node.items as JsonSchema);
  if (isRecord(node.additionalProperties))
    out.additionalProperties = closeObjects(node.additionalProperties as JsonSchema);
  return out;
}

function toProblems(errors: ErrorObject[], data: unknown): Problem[] {
  const problems: Problem[] = [];
  const typeErrorPaths = new Set(errors.filter((e) => e.keyword === 'type').map((e) => e.instancePath));
  const seen = new Set<string>();
  for (const error of errors) {
    // A value of the wrong type also fails enum, pattern, ...: the type error says it all.
    if (error.keyword !== 'type' && typeErrorPaths.has(error.instancePath)) continue;
    const problem = toProblem(error, data);
    const key = `${problem.path}\n${problem.message}`;
    if (!seen.has(key)) problems.push(problem);
    seen.add(key);
  }
  return problems;
}

function toProblem(error: ErrorObject, data: unknown): Problem {
  const segments = instanceSegments(error.instancePath, data);
  const path = formatPath(segments);
  const value: unknown = error.data;
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'required':
      return { path: formatPath([...segments, String(params.missingProperty)]), message: 'required field is missing' };
    case 'additionalProperties': {
      const field = String(params.additionalProperty);
      const known = Object.keys((error.parentSchema?.properties as Json | undefined) ?? {});
      const guess = closest(field, known);
      return {
        path: formatPath([...segments, field]),
        message: `unknown field${guess ? ` (did you mean ${guess}?)` : ''}`,
      };
    }
    case 'enum': {
      const allowed = (params.allowedValues as unknown[]).map(String).join(', ');
      return { path, message: `must be one of ${allowed} (got ${describe(value)})` };
    }
    case 'pattern': {
      const hint = patternHint(String(params.pattern));
      const text = String(value);
      return { path, message: hint ? hint(text) : `${JSON.stringify(text)} does not match ${String(params.pattern)}` };
    }
    case 'type':
      return { path, message: typeMessage(String(params.type), value, error.parentSchema) };
    case 'minimum':
    case 'exclusiveMinimum':
      return {
        path,
        message: `must be ${error.keyword === 'minimum' ? 'at least' : 'more than'} ${String(params.limit)} (got ${describe(value)})`,
      };
    case 'maximum':
    case 'exclusiveMaximum':
      return {
        path,
        message: `must be ${error.keyword === 'maximum' ? 'at most' : 'less than'} ${String(params.limit)} (got ${describe(value)})`,
      };
    case 'minLength':
      return {
        path,
        message: params.limit === 1 ? 'must not be empty' : `must be at least ${String(params.limit)} characters long`,
      };
    case 'maxLength':
      return { path, message: `must be at most ${String(params.limit)} characters long (got ${String(value).length})` };
    case 'minItems':
      return { path, message: `must have at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}` };
    case 'maxItems':
      return { path, message: `must have at most ${String(params.limit)} items (got ${(value as unknown[]).length})` };
    case 'minProperties':
      return { path, message: `must have at least ${String(params.limit)} entries` };
    case 'maxProperties':
      return {
        path,
        message: `must have at most ${String(params.limit)} entries (got ${Object.keys(value as Json).length})`,
      };
    case 'format':
      return params.format === 'date-time'
        ? { path, message: `must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z (got ${describe(value)})` }
        : { path, message: `must be a valid ${String(params.format)} (got ${describe(value)})` };
    default:
      return { path, message: `${error.message ?? 'is invalid'} (${error.keyword})` };
  }
}

function typeMessage(expected: string, value: unknown, schema: Json | undefined): string {
  const article = expected === 'integer' || expected === 'array' || expected === 'object' ? 'an' : 'a';
  const shown = `${article} ${expected === 'object' ? 'mapping' : expected === 'array' ? 'list' : expected}`;
  if (expected === 'string' && (typeof value === 'number' || typeof value === 'boolean')) {
    const example = schema?.pattern !== undefined && patternHint(String(schema.pattern)) ? ' such as "2Gi"' : '';
    return `must be a string${example} (got ${describe(value)}): put the value in quotes`;
  }
  return `must be ${shown} (got ${describe(value)})`;
}

/** ajv's JSON pointer, with array indices as numbers (ajv writes both as "/1"). */
function instanceSegments(pointer: string, data: unknown): Segment[] {
  const segments: Segment[] = [];
  let node: unknown = data;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    const segment: Segment = Array.isArray(node) ? Number(key) : key;
    segments.push(segment);
    node = isRecord(node) || Array.isArray(node) ? (node as Record<string | number, unknown>)[segment] : undefined;
  }
  return segments;
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The known field closest to a misspelt one, if it is close enough to be a likely typo. */
export function closest(field: string, known: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = name.toLowerCase() === field.toLowerCase() ? 0 : editDistance(field, name);
    if (distance <= Math.max(1, Math.floor(name.length / 4)) && (!best || distance < best.distance))
      best = { name, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
