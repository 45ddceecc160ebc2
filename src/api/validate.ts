// Offline validation of virtfleet manifests: what the API server would refuse, found before
// `kubectl apply`, with the same field paths and messages that say how to fix the value.
//
// Order mirrors the API server: nulls dropped, unknown fields refused (strict field validation),
// defaults applied, the schema checked (ajv, on the very schema the CRD carries), list-map keys
// checked for duplicates, then the cross-field rules (the TypeScript twins of the CRD's CEL).
// One difference, on purpose: the API server skips all CEL rules once the schema check failed
// anywhere; we skip only rules on nodes that contain a schema error, so one run reports more.
import { Buffer } from 'node:buffer';
import { readFileSync } from 'node:fs';
import { LineCounter, isMap, isScalar, isSeq, parseAllDocuments, type Node } from 'yaml';
import { API_VERSION, DNS_LABEL, DNS_SUBDOMAIN, GROUP, LABEL_VALUE, type ResourceDefinition } from './common.js';
import { objectSchema } from './crd.js';
import { clip, describe, formatPath, isWithin, joinPath, parsePath, type Problem, type Segment } from './problems.js';
import { RESOURCES, resourceByKind } from './resources.js';
import { rulesOf } from './rules.js';
import { checkSchema, closest } from './schema-check.js';

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
  if (!isRecord(object))
    return [{ path: '', message: 'not a Kubernetes object: expected a mapping with apiVersion and kind' }];
  const { apiVersion, kind } = object;
  const header: Problem[] = [];
  if (typeof apiVersion !== 'string' || apiVersion === '')
    header.push({ path: 'apiVersion', message: 'required field is missing' });
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
  const resource =
    isRecord(object) && typeof object.kind === 'string' && object.apiVersion === API_VERSION
      ? resourceByKind(object.kind)
      : undefined;
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

// What the API server checks in metadata (apimachinery's ValidateObjectMeta), for the fields a
// manifest sets: the name, the namespace, labels and annotations; and, with strict field
// validation (kubectl's default), no field ObjectMeta does not have.
const OBJECT_META_FIELDS = [
  'name',
  'generateName',
  'namespace',
  'selfLink',
  'uid',
  'resourceVersion',
  'generation',
  'creationTimestamp',
  'deletionTimestamp',
  'deletionGracePeriodSeconds',
  'labels',
  'annotations',
  'ownerReferences',
  'finalizers',
  'managedFields',
];
/** The API server's TotalAnnotationSizeLimitB: keys and values of all annotations together. */
export const ANNOTATIONS_MAX_BYTES = 256 * 1024;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const QUALIFIED_NAME_MAX = 63;
const KEY_EXAMPLE = 'e.g. tier or example.com/tier';

function validateMetadata(metadata: unknown, resource: ResourceDefinition): Problem[] {
  if (!isRecord(metadata)) return [{ path: 'metadata', message: 'required field is missing' }];
  const problems: Problem[] = [];
  for (const field of Object.keys(metadata)) {
    if (OBJECT_META_FIELDS.includes(field)) continue;
    const guess = closest(field, OBJECT_META_FIELDS);
    problems.push({
      path: formatPath(['metadata', field]),
      message: `unknown field${guess ? ` (did you mean ${guess}?)` : ''}`,
    });
  }
  const { name, namespace, labels, annotations } = metadata;
  if (name === undefined || name === null || name === '') {
    problems.push({ path: 'metadata.name', message: 'required field is missing (kubectl apply needs a name)' });
  } else {
    problems.push(
      ...checkName('metadata.name', name, DNS_SUBDOMAIN.pattern, DNS_SUBDOMAIN.maxLength, DNS_SUBDOMAIN.hint),
    );
  }
  // Namespaces are DNS labels; the API server ignores the field on cluster-scoped kinds.
  if (namespace !== undefined && namespace !== null && resource.scope === 'Namespaced') {
    problems.push(
      ...checkName('metadata.namespace', namespace, DNS_LABEL.pattern, DNS_LABEL.maxLength, DNS_LABEL.hint),
    );
  }
  problems.push(...checkLabels(labels), ...checkAnnotations(annotations));
  return problems;
}

function checkName(
  path: string,
  value: unknown,
  pattern: string,
  maxLength: number,
  hint: (v: string) => string,
): Problem[] {
  if (typeof value !== 'string') return [{ path, message: `must be a string (got ${describe(value)})` }];
  if (value.length > maxLength)
    return [{ path, message: `must be at most ${maxLength} characters long (got ${value.length})` }];
  return new RegExp(pattern, 'u').test(value) ? [] : [{ path, message: hint(value) }];
}

/** Labels as ValidateLabels checks them; every problem is at metadata.labels, as there. */
function checkLabels(labels: unknown): Problem[] {
  const path = 'metadata.labels';
  if (labels === undefined || labels === null) return [];
  if (!isRecord(labels))
    return [{ path, message: `must be a mapping of label keys to values (got ${describe(labels)})` }];
  const problems: Problem[] = [];
  const valuePattern = new RegExp(LABEL_VALUE.pattern, 'u');
  for (const [key, value] of Object.entries(labels)) {
    const keyProblem = qualifiedNameProblem(key);
    if (keyProblem) problems.push({ path, message: `label key ${shown(key)} ${keyProblem} (${KEY_EXAMPLE})` });
    // A null value reads as "" (encoding/json leaves the string empty).
    if (value === null) continue;
    if (typeof value !== 'string') {
      problems.push({
        path,
        message: `label ${shown(key)}: the value must be a string (got ${describe(value)}): put it in quotes`,
      });
    } else if (value.length > LABEL_VALUE.maxLength) {
      problems.push({
        path,
        message: `label ${shown(key)}: the value must be at most ${LABEL_VALUE.maxLength} characters long (got ${value.length})`,
      });
    } else if (!valuePattern.test(value)) {
      problems.push({ path, message: `label ${shown(key)}: ${LABEL_VALUE.hint(clip(value, 80))}` });
    }
  }
  return problems;
}

/** Annotations as ValidateAnnotations checks them: keys (case does not matter), then the total size. */
function checkAnnotations(annotations: unknown): Problem[] {
  const path = 'metadata.annotations';
  if (annotations === undefined || annotations === null) return [];
  if (!isRecord(annotations))
    return [{ path, message: `must be a mapping of annotation keys to values (got ${describe(annotations)})` }];
  const problems: Problem[] = [];
  let bytes = 0;
  for (const [key, value] of Object.entries(annotations)) {
    const keyProblem = qualifiedNameProblem(key.toLowerCase());
    if (keyProblem) problems.push({ path, message: `annotation key ${shown(key)} ${keyProblem} (${KEY_EXAMPLE})` });
    if (value !== null && typeof value !== 'string') {
      problems.push({
        path,
        message: `annotation ${shown(key)}: the value must be a string (got ${describe(value)}): put it in quotes`,
      });
    }
    bytes += Buffer.byteLength(key) + (typeof value === 'string' ? Buffer.byteLength(value) : 0);
  }
  if (bytes > ANNOTATIONS_MAX_BYTES) {
    problems.push({
      path,
      message:
        `Too long: may not be more than ${ANNOTATIONS_MAX_BYTES} bytes (keys and values hold ${bytes} bytes together); ` +
        'keep large data elsewhere, e.g. in a ConfigMap',
    });
  }
  return problems;
}

/** Why `key` is not a qualified name (apimachinery's IsQualifiedName), or undefined when it is one. */
function qualifiedNameProblem(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return "has more than one '/'";
  const [prefix, name = ''] = parts.length === 2 ? parts : [undefined, key];
  if (prefix !== undefined) {
    if (prefix === '') return "has an empty prefix before '/'";
    if (prefix.length > DNS_SUBDOMAIN.maxLength)
      return `has a prefix longer than ${DNS_SUBDOMAIN.maxLength} characters (got ${prefix.length})`;
    if (!new RegExp(DNS_SUBDOMAIN.pattern, 'u').test(prefix)) {
      return "has a prefix that is not a DNS subdomain (lowercase letters, digits, '-' and '.')";
    }
  }
  if (name === '') return 'has an empty name';
  if (name.length > QUALIFIED_NAME_MAX)
    return `has a name longer than ${QUALIFIED_NAME_MAX} characters (got ${name.length})`;
  if (!QUALIFIED_NAME_PART.test(name)) {
    return "has a name that is not letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
  }
  return undefined;
}

/** A key or value quoted for a message, cut short when long. */
function shown(text: string): string {
  return JSON.stringify(clip(text, 80));
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
    for (const [key, child] of Object.entries(value))
      walk(schema.additionalProperties, child, [...segments, key], errorPaths, out);
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

/** Checks every document of a YAML (or JSON) file; a file that is not text is one problem. */
export function validateFile(file: string): FileReport {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : (code ?? String(error));
    return { file, objects: 0, problems: [{ file, path: '', message: `cannot read the file: ${reason}` }] };
  }
  return validateBytes(bytes, file);
}

/** Checks a file's bytes: they must be UTF-8 text (what kubectl's decoders read), else nothing in it is checked. */
export function validateBytes(bytes: Uint8Array, file: string): FileReport {
  const decoded = decodeText(bytes);
  if (typeof decoded !== 'string') return { file, objects: 0, problems: [{ file, path: '', ...decoded }] };
  return validateText(decoded, file);
}

const NOT_CHECKED = 'nothing in it was checked';

/** The text, or why the bytes are not a text file (and where). */
function decodeText(bytes: Uint8Array): string | { message: string } {
  const nul = bytes.indexOf(0);
  if (nul >= 0)
    return {
      message: `not a YAML or JSON text file: it holds a NUL byte at offset ${nul} (binary data?); ${NOT_CHECKED}`,
    };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    const byte = (bytes[offset] ?? 0).toString(16).padStart(2, '0');
    return {
      message: `not a YAML or JSON text file: byte 0x${byte} at offset ${offset} is not UTF-8 (binary data?); ${NOT_CHECKED}`,
    };
  }
  return text;
}

/**
 * Where `text` holds a raw control character that no YAML or JSON reader takes: YAML allows no C0
 * control but tab, LF and CR anywhere in a stream, and JSON none outside escapes, so kubectl
 * refuses such a file before it reads a single object.
 */
function controlCharacter(text: string): { line: number; message: string } | undefined {
  const control = /[\x00-\x08\x0b\x0c\x0e-\x1f]/.exec(text);
  if (!control) return undefined;
  const before = text.slice(0, control.index);
  const line = before.split('\n').length;
  const column = control.index - before.lastIndexOf('\n');
  const escaped = `\\x${control[0].charCodeAt(0).toString(16).padStart(2, '0')}`;
  return {
    line,
    message:
      `not YAML or JSON text: a raw control character ${escaped} in column ${column}; only tab, LF and CR may appear as they are ` +
      `(write others as escapes in a double-quoted string, e.g. "${escaped}"); ${NOT_CHECKED}`,
  };
}

/** Offset of the first byte that does not continue a well-formed UTF-8 sequence. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const lead = bytes[i] ?? 0;
    const extra =
      lead < 0x80
        ? 0
        : lead >= 0xc2 && lead <= 0xdf
          ? 1
          : lead >= 0xe0 && lead <= 0xef
            ? 2
            : lead >= 0xf0 && lead <= 0xf4
              ? 3
              : -1;
    if (extra < 0) return i;
    // The second byte's range excludes overlong forms, surrogates and code points past U+10FFFF.
    const low = lead === 0xe0 ? 0xa0 : lead === 0xf0 ? 0x90 : 0x80;
    const high = lead === 0xed ? 0x9f : lead === 0xf4 ? 0x8f : 0xbf;
    for (let k = 1; k <= extra; k++) {
      const next = bytes[i + k];
      if (next === undefined || next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return i;
    }
    i += extra + 1;
  }
  return i;
}

/** At most this many YAML syntax errors are reported per file; the rest are counted in one line. */
const MAX_SYNTAX_ERRORS = 20;

export function validateText(text: string, file: string): FileReport {
  const lineCounter = new LineCounter();
  const report: FileReport = { file, objects: 0, problems: [] };
  const control = controlCharacter(text);
  if (control) {
    report.problems.push({ file, path: '', ...control });
    return report;
  }
  // YAML 1.1, as the API machinery's YAML decoder reads it: `yes`/`on` are booleans there. (The
  // parser turns even a stack overflow from deep nesting into a document error.)
  const documents = parseAllDocuments(text, { lineCounter, version: '1.1', prettyErrors: false });
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  let syntaxErrors = 0;

  Array.from(documents).forEach((document, index) => {
    const object = `document ${index + 1}`;
    if (document.errors.length > 0) {
      for (const error of document.errors) {
        syntaxErrors += 1;
        if (syntaxErrors > MAX_SYNTAX_ERRORS) continue;
        const message = `YAML syntax error: ${clip(error.message.split('\n')[0] ?? '', 200)}`;
        report.problems.push({ file, line: lineAt(error.pos[0]), object, path: '', message });
      }
      return;
    }
    let value: unknown;
    try {
      value = document.toJS();
    } catch (error) {
      report.problems.push({
        file,
        line: lineAt(document.range[0]),
        object,
        path: '',
        message: unreadableDocument(error),
      });
      return;
    }
    if (value === null || value === undefined) return;
    report.objects += 1;
    const label = objectLabel(value) ?? object;
    for (const problem of validateObject(value)) {
      const offset = offsetOf(document.contents, parsePath(problem.path));
      report.problems.push({
        file,
        object: label,
        ...problem,
        ...(offset === undefined ? {} : { line: lineAt(offset) }),
      });
    }
  });
  if (syntaxErrors > MAX_SYNTAX_ERRORS) {
    const more = syntaxErrors - MAX_SYNTAX_ERRORS;
    report.problems.push({
      file,
      path: '',
      message: `${more} more YAML syntax error${more === 1 ? '' : 's'} not shown; fix the ones above first`,
    });
  }
  return report;
}

/** Why a document that parsed cannot be turned into an object. */
function unreadableDocument(error: unknown): string {
  // The yaml library counts how far aliases expand; past its limit it throws instead of
  // building a "billion laughs" object. kubectl's decoder refuses such documents too.
  if (error instanceof ReferenceError && /alias count/i.test(error.message)) {
    return 'YAML aliases expand too far (excessive aliasing, as in a "billion laughs" document): write the values out instead of nesting aliases';
  }
  return `cannot read the YAML: ${errorText(error)}`;
}

function errorText(error: unknown): string {
  return clip((error instanceof Error ? error.message : String(error)).split('\n')[0] ?? '', 200);
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
