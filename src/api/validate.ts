// Offline validation of virtfleet manifests: what the API server would refuse, found before
// `kubectl apply`, with the same field paths and messages that say how to fix the value.
//
// Order mirrors the API server: nulls dropped, unknown fields refused (strict field validation),
// defaults applied, the schema checked (ajv, on the very schema the CRD carries), list-map keys
// checked for duplicates, then the cross-field rules (the TypeScript twins of the CRD's CEL).
// One difference, on purpose: the API server skips all CEL rules once the schema check failed
// anywhere; we skip only rules on nodes that contain a schema error, so one run reports more.
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments, type Node } from 'yaml';
import { API_VERSION, DNS_LABEL, DNS_SUBDOMAIN, GROUP, type ResourceDefinition } from './common.js';
import { objectSchema } from './crd.js';
import { describe, formatPath, isWithin, joinPath, parsePath, type Problem, type Segment } from './problems.js';
import { RESOURCES, resourceByKind } from './resources.js';
import { rulesOf } from './rules.js';
import { checkSchema } from './schema-check.js';

export type { Problem } from './problems.js';

export interface FileProblem extends Problem {
  file: string;
  /** 1-based line of the offending field (or of its nearest existing parent). */
  line?: number;
  /** `Kind/name` of the object, or `document N` when it has none. */
  object?: string;
}

export interface FileReport {
  file: string;
  /** Documents that held an object (empty documents do not count). */
  objects: number;
  problems: FileProblem[];
}

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Objects

/** Checks one object as the API server would check it on create; other API groups pass untouched. */
export function validateObject(object: unknown): Problem[] {
  if (!isRecord(object)) return [{ path: '', message: 'not a Kubernetes object: expected a mapping with apiVersion and kind' }];
  const { apiVersion, kind } = object;
  const header: Problem[] = [];
  if (typeof apiVersion !== 'string' || apiVersion === '') header.push({ path: 'apiVersion', message: 'required field is missing' });
  if (typeof kind !== 'string' || kind === '') header.push({ path: 'kind', message: 'required field is missing' });
  if (header.length > 0 || typeof apiVersion !== 'string' || typeof kind !== 'string') return header;

  if (apiVersion === 'v1' && kind === 'List') return validateList(object.items);
  if (apiVersion !== GROUP && !apiVersion.startsWith(`${GROUP}/`)) return [];

  const resource = resourceByKind(kind);
  if (!resource) {
    const known = RESOURCES.map((r) => r.kind).join(', ');
    return [{ path: 'kind', message: `unknown kind ${JSON.stringify(kind)} in ${GROUP}; known kinds: ${known}` }];
  }
  if (apiVersion !== API_VERSION) {
    return [{ path: 'apiVersion', message: `${JSON.stringify(apiVersion)} is not served; use ${API_VERSION}` }];
  }
  return [...validateMetadata(object.metadata, resource), ...validateBody(object, resource)];
}

/**
 * The object with the API server's defaults filled in (nulls dropped, status left alone), as
 * `kubectl get -o yaml` would show it after create. Objects of other groups come back unchanged.
 */
export function withDefaults<T>(object: T): T {
  const resource = isRecord(object) && typeof object.kind === 'string' && object.apiVersion === API_VERSION ? resourceByKind(object.kind) : undefined;
  if (!resource || !isRecord(object)) return object;
  const { status, ...rest } = object;
  const data = dropNulls(structuredClone(rest)) as Json;
  checkSchema(resource, data);
  return (status === undefined ? data : { ...data, status }) as T;
}

function validateList(items: unknown): Problem[] {
  if (!Array.isArray(items)) return [];
  return items.flatMap((item, index) =>
    validateObject(item).map((problem) => ({ ...problem, path: joinPath(`items[${index}]`, problem.path) })),
  );
}

function validateMetadata(metadata: unknown, resource: ResourceDefinition): Problem[] {
  if (!isRecord(metadata)) return [{ path: 'metadata', message: 'required field is missing' }];
  const problems: Problem[] = [];
  const { name, namespace } = metadata;
  if (name === undefined || name === null || name === '') {
    problems.push({ path: 'metadata.name', message: 'required field is missing (kubectl apply needs a name)' });
  } else {
    problems.push(...checkName('metadata.name', name, DNS_SUBDOMAIN.pattern, DNS_SUBDOMAIN.maxLength, DNS_SUBDOMAIN.hint));
  }
  // Namespaces are DNS labels; the API server ignores the field on cluster-scoped kinds.
  if (namespace !== undefined && namespace !== null && resource.scope === 'Namespaced') {
    problems.push(...checkName('metadata.namespace', namespace, DNS_LABEL.pattern, DNS_LABEL.maxLength, DNS_LABEL.hint));
  }
  return problems;
}

function checkName(path: string, value: unknown, pattern: string, maxLength: number, hint: (v: string) => string): Problem[] {
  if (typeof value !== 'string') return [{ path, message: `must be a string (got ${describe(value)})` }];
  if (value.length > maxLength) return [{ path, message: `must be at most ${maxLength} characters long (got ${value.length})` }];
  return new RegExp(pattern, 'u').test(value) ? [] : [{ path, message: hint(value) }];
}

function validateBody(object: Json, resource: ResourceDefinition): Problem[] {
  // The status subresource makes the API server ignore status on create and update.
  const { status: _ignored, ...rest } = object;
  const data = dropNulls(structuredClone(rest)) as Json;
  const schemaProblems = checkSchema(resource, data); // also fills in defaults, which the rules rely on
  const errorPaths = schemaProblems.map((p) => p.path);
  const walked: Problem[] = [];
  walk(objectSchema(resource), data, [], errorPaths, walked);
  return [...schemaProblems, ...walked];
}

/** The API server drops null values of non-nullable fields before it validates (none of ours is nullable). */
function dropNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(dropNulls);
  if (!isRecord(value)) return value;
  for (const [key, child] of Object.entries(value)) {
    if (child === null) delete value[key];
    else value[key] = dropNulls(child);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// List-map keys and cross-field rules

function walk(schema: Json, value: unknown, segments: Segment[], errorPaths: string[], out: Problem[]): void {
  const path = formatPath(segments);
  if (Array.isArray(value) && schema['x-kubernetes-list-type'] === 'map') {
    out.push(...duplicateKeys(value, (schema['x-kubernetes-list-map-keys'] as string[] | undefined) ?? [], segments));
  }
  const rules = rulesOf(schema);
  if (rules.length > 0 && !errorPaths.some((p) => isWithin(p, path))) {
    for (const rule of rules) {
      if (holds(rule.holds.bind(rule), value)) continue;
      const fieldSegments = rule.fieldPath ? rule.fieldPath.split('.').filter(Boolean) : [];
      out.push({ path: formatPath([...segments, ...fieldSegments]), message: rule.message });
    }
  }
  if (isRecord(value) && isRecord(schema.properties)) {
    for (const [name, child] of Object.entries(schema.properties)) {
      if (value[name] !== undefined) walk(child as Json, value[name], [...segments, name], errorPaths, out);
    }
  }
  if (Array.isArray(value) && isRecord(schema.items)) {
    value.forEach((item, index) => walk(schema.items as Json, item, [...segments, index], errorPaths, out));
  }
  if (isRecord(value) && isRecord(schema.additionalProperties)) {
    for (const [key, child] of Object.entries(value)) walk(schema.additionalProperties, child, [...segments, key], errorPaths, out);
  }
}

/** A predicate that throws (it met data the schema check already refused) counts as holding. */
function holds(predicate: (self: unknown) => boolean, value: unknown): boolean {
  try {
    return predicate(value);
  } catch {
    return true;
  }
}

function duplicateKeys(items: unknown[], keys: string[], segments: Segment[]): Problem[] {
  const firstIndex = new Map<string, number>();
  const problems: Problem[] = [];
  items.forEach((item, index) => {
    if (!isRecord(item)) return;
    const key = JSON.stringify(keys.map((k) => item[k]));
    const first = firstIndex.get(key);
    if (first === undefined) {
      firstIndex.set(key, index);
      return;
    }
    const shown = keys.map((k) => `${k} ${JSON.stringify(item[k])}`).join(', ');
    problems.push({
      path: formatPath([...segments, index]),
      message: `duplicate ${shown}: already used by ${formatPath([...segments, first])}; each entry needs its own ${keys.join(' and ')}`,
    });
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Files

/** Checks every document of a YAML (or JSON) file. */
export function validateFile(file: string): FileReport {
  return validateText(readFileSync(file, 'utf8'), file);
}

export function validateText(text: string, file: string): FileReport {
  const lineCounter = new LineCounter();
  // YAML 1.1, as the API machinery's YAML decoder reads it: `yes`/`on` are booleans there.
  const documents = parseAllDocuments(text, { lineCounter, version: '1.1', prettyErrors: false });
  const report: FileReport = { file, objects: 0, problems: [] };
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;

  Array.from(documents).forEach((document, index) => {
    const object = `document ${index + 1}`;
    if (document.errors.length > 0) {
      for (const error of document.errors) {
        const message = `YAML syntax error: ${error.message.split('\n')[0] ?? ''}`;
        report.problems.push({ file, line: lineAt(error.pos[0]), object, path: '', message });
      }
      return;
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) return;
    report.objects += 1;
    const label = objectLabel(value) ?? object;
    for (const problem of validateObject(value)) {
      const offset = offsetOf(document.contents, parsePath(problem.path));
      report.problems.push({ file, object: label, ...problem, ...(offset === undefined ? {} : { line: lineAt(offset) }) });
    }
  });
  return report;
}

function objectLabel(value: unknown): string | undefined {
  if (!isRecord(value) || typeof value.kind !== 'string') return undefined;
  const name = isRecord(value.metadata) ? value.metadata.name : undefined;
  return typeof name === 'string' && name !== '' ? `${value.kind}/${name}` : undefined;
}

/** Offset of the deepest node along `segments` that exists (a missing field points at its parent). */
function offsetOf(root: Node | null, segments: Segment[]): number | undefined {
  let node: unknown = root;
  let offset = isNodeWithRange(root) ? root.range[0] : undefined;
  for (const segment of segments) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      if (isNodeWithRange(pair.key)) offset = pair.key.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item: unknown = node.items[segment];
      if (!isNodeWithRange(item)) break;
      offset = item.range[0];
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

function isNodeWithRange(node: unknown): node is { range: [number, number, number] } {
  return isRecord(node) && Array.isArray(node.range);
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
