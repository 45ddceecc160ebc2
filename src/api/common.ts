// Shared pieces of the virtfleet API: schema builders, patterns, and types used by several kinds.
//
// The builders take the description as their first, required argument, so no field can be
// declared without the text `kubectl explain` shows. They only produce schema shapes the API
// server accepts in a structural CRD schema (enums instead of unions of literals, maps through
// additionalProperties), so src/api/crd.ts has little to translate.
import {
  Type,
  type ArrayOptions,
  type IntegerOptions,
  type NumberOptions,
  type ObjectOptions,
  type StringOptions,
  type TArray,
  type TObject,
  type TProperties,
  type Static,
  type TSchema,
  type TString,
  type TUnsafe,
} from '@sinclair/typebox';
import { QUANTITY_PATTERN } from './quantity.js';
import { withRules } from './rules.js';

export const GROUP = 'virtfleet.io';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;

/** Hypervisors a host can run and a VM can be placed on. */
export const HYPERVISORS = ['kvm', 'xen'] as const;

// ---------------------------------------------------------------------------------------------
// Patterns. Each carries a hint, so the validator can say what a value should look like instead
// of printing a regular expression. Patterns must mean the same in Go's RE2 (API server) and in
// JavaScript with the `u` flag (ajv): no look-around, no `\s`, no back-references.

export interface NamedPattern {
  pattern: string;
  maxLength: number;
  /** Explains a refused value, e.g. `"2GB" is not a Kubernetes quantity (use e.g. 2Gi or 2048Mi)`. */
  hint: (value: string) => string;
}

const hints = new Map<string, NamedPattern['hint']>();

/** Registers a pattern and its hint; the validator looks hints up by pattern text. */
export function definePattern(pattern: string, maxLength: number, hint: NamedPattern['hint']): NamedPattern {
  hints.set(pattern, hint);
  return { pattern, maxLength, hint };
}

export function patternHint(pattern: string): NamedPattern['hint'] | undefined {
  return hints.get(pattern);
}

const quote = (value: string) => JSON.stringify(value);

export const DNS_LABEL = definePattern(
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$',
  63,
  (v) =>
    `${quote(v)} is not a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit, e.g. web-1)`,
);
export const DNS_SUBDOMAIN = definePattern(
  '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$',
  253,
  (v) => `${quote(v)} is not a DNS subdomain (lowercase letters, digits, '-' and '.', e.g. web-1 or db.example)`,
);
export const QUANTITY = definePattern(
  QUANTITY_PATTERN,
  64,
  (v) => `${quote(v)} is not a Kubernetes quantity (use e.g. 2Gi or 2048Mi)`,
);
export const LABEL_KEY = definePattern(
  '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$',
  317,
  (v) =>
    `${quote(v)} is not a label key (an optional DNS prefix and '/', then letters, digits, '-', '_' and '.', e.g. example.com/rack)`,
);
export const LABEL_VALUE = definePattern(
  '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$',
  63,
  (v) =>
    `${quote(v)} is not a label value (letters, digits, '-', '_' and '.', starting and ending with a letter or digit)`,
);
export const SECRET_KEY = definePattern(
  '^[-._a-zA-Z0-9]+$',
  253,
  (v) => `${quote(v)} is not a Secret key (letters, digits, '-', '_' and '.')`,
);
/** An absolute path of plain file-name characters: it ends up in libvirt XML, Kickstart and shells. */
export const ABSOLUTE_PATH = definePattern(
  '^(/[A-Za-z0-9._+-]+)+/?$',
  1024,
  (v) =>
    `${quote(v)} is not an absolute path of safe characters (letters, digits, '.', '_', '+', '-', '/'), e.g. /var/lib/virtfleet`,
);
/** Printable text on one line: no newline or other control character. */
// C0 and C1 controls, DEL, and the Unicode line and paragraph separators (U+0085 and U+2028 end a
// line for many readers). The separators are written as the characters themselves: the same
// pattern must compile in Go (RE2, the API server) and in JavaScript (the validator), which spell
// \u escapes differently. U+FFFE/U+FFFF (which XML cannot carry) cannot be named here at all:
// kustomize and kubectl refuse a CRD holding them ("control characters are not allowed").
export const SINGLE_LINE = definePattern(
  '^[^\\x00-\\x1f\\x7f-\\x9f\u2028\u2029]*$',
  4096,
  (v) => `${quote(v)} must be a single line without control characters or line separators`,
);
// URLs: only characters that need no quoting in Kickstart, iPXE scripts or shells, so no
// whitespace, quotes, '$', '`', '\', '#', '<', '>', '{', '}', '|' or '^'.
const URL_HOST = '[A-Za-z0-9\\[\\]._:@%-]+';
const URL_REST = '(/[A-Za-z0-9._~:/?@!&()*+,;=%\\[\\]-]*)?';
export const HTTP_URL = definePattern(
  `^https?://${URL_HOST}${URL_REST}$`,
  2048,
  (v) => `${quote(v)} is not an http:// or https:// URL of safe characters (no spaces, quotes, '$', '#' or '\\')`,
);
export const INSTALL_URL = definePattern(
  `^(https?|ftp|nfs)://${URL_HOST}${URL_REST}$`,
  2048,
  (v) =>
    `${quote(v)} is not an http://, https://, ftp:// or nfs:// URL of safe characters (no spaces, quotes, '$', '#' or '\\')`,
);
export const IPV4 = definePattern(
  '^((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])$',
  15,
  (v) => `${quote(v)} is not an IPv4 address (e.g. 192.0.2.10)`,
);
/** A libvirt object name (storage pool, volume, network): no '/', no spaces, no quotes. */
export const LIBVIRT_NAME = definePattern(
  '^[A-Za-z0-9][A-Za-z0-9._-]*$',
  128,
  (v) =>
    `${quote(v)} is not a libvirt object name (letters, digits, '.', '_' and '-', starting with a letter or digit)`,
);
/** A Linux network interface name (IFNAMSIZ is 16 including the terminator). */
export const INTERFACE_NAME = definePattern(
  '^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$',
  15,
  (v) => `${quote(v)} is not a network interface name (at most 15 letters, digits, '_', '.' or '-', e.g. br0)`,
);

// ---------------------------------------------------------------------------------------------
// Schema builders.

export function str(description: string, options: StringOptions = {}): TString {
  return Type.String({ description, ...options });
}

/** A string constrained by a named pattern (and its length limit). */
export function matching(description: string, named: NamedPattern, options: StringOptions = {}): TString {
  return Type.String({ description, pattern: named.pattern, maxLength: named.maxLength, ...options });
}

export function int(description: string, options: IntegerOptions = {}) {
  return Type.Integer({ description, ...options });
}

export function num(description: string, options: NumberOptions = {}) {
  return Type.Number({ description, ...options });
}

export function bool(description: string, defaultValue?: boolean) {
  return Type.Boolean(defaultValue === undefined ? { description } : { description, default: defaultValue });
}

/** A string enum; the CRD gets `enum`, TypeScript gets the union of the values. */
export function oneOf<const V extends readonly string[]>(
  description: string,
  values: V,
  options: { default?: V[number] } = {},
): TUnsafe<V[number]> {
  return Type.Unsafe<V[number]>({ type: 'string', description, enum: [...values], ...options });
}

/** A map with string keys (structural schemas express maps through additionalProperties). */
export function mapOf<T extends TSchema>(description: string, values: T, options: { maxProperties?: number } = {}) {
  return Type.Unsafe<Record<string, Static<T>>>({
    type: 'object',
    description,
    additionalProperties: values,
    ...options,
  });
}

/**
 * An object. Properties with a `default` are dropped from `required`: the API server fills them
 * in, so they are optional in a manifest but always present when read back, which is exactly
 * what the static type says.
 *
 * `default: {}` is expanded to the children's defaults: the API server checks a default against
 * the node's CEL rules as written, without filling in nested defaults first, so a bare `{}`
 * would fail rules that read defaulted children (and `kubectl explain` shows the full value).
 */
export function obj<P extends TProperties>(
  description: string,
  properties: P,
  options: ObjectOptions = {},
): TObject<P> {
  const expanded = isEmptyObject(options.default) ? { ...options, default: childDefaults(properties) } : options;
  const schema = Type.Object(properties, { description, ...expanded });
  const node = schema as { required?: string[] };
  const required = (node.required ?? []).filter((name) => (properties[name] as TSchema).default === undefined);
  if (required.length > 0) node.required = required;
  else delete node.required;
  return schema;
}

function childDefaults(properties: TProperties): Record<string, unknown> {
  const defaults: Record<string, unknown> = {};
  for (const [name, child] of Object.entries(properties)) {
    if (child.default !== undefined) defaults[name] = structuredClone(child.default);
  }
  return defaults;
}

function isEmptyObject(value: unknown): boolean {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && Object.keys(value).length === 0;
}

export function listOf<T extends TSchema>(description: string, items: T, options: ArrayOptions = {}): TArray<T> {
  return Type.Array(items, { description, ...options });
}

/**
 * A list of objects identified by key fields: the API server merges it by key in server-side
 * apply and refuses duplicate keys ("Duplicate value"), and so does the validator.
 */
export function namedList<T extends TSchema>(
  description: string,
  items: T,
  options: ArrayOptions & { keys?: string[] } = {},
): TArray<T> {
  const { keys = ['name'], ...rest } = options;
  return Type.Array(items, {
    description,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': keys,
    ...rest,
  });
}

export const quantity = (description: string, options: StringOptions = {}) => matching(description, QUANTITY, options);
export const dnsLabel = (description: string, options: StringOptions = {}) => matching(description, DNS_LABEL, options);
export const dnsSubdomain = (description: string) => matching(description, DNS_SUBDOMAIN);

// ---------------------------------------------------------------------------------------------
// Shared object types.

export const ConditionSchema = obj("One aspect of the object's state, in the shape of metav1.Condition.", {
  type: str('Kind of condition in CamelCase, e.g. Ready, Scheduled, Installed.', {
    pattern: '^[A-Za-z][A-Za-z0-9]*$',
    maxLength: 316,
  }),
  status: oneOf('Whether the condition holds: True, False or Unknown.', ['True', 'False', 'Unknown']),
  observedGeneration: Type.Optional(
    int('The .metadata.generation the condition was computed from.', { format: 'int64', minimum: 0 }),
  ),
  lastTransitionTime: str('When the status last changed (RFC 3339).', { format: 'date-time' }),
  reason: str('Machine-readable CamelCase reason for the last transition.', {
    pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    maxLength: 1024,
  }),
  message: Type.Optional(str('Human-readable details about the last transition.', { maxLength: 32768 })),
});

export function conditions(description: string) {
  return namedList(description, ConditionSchema, { keys: ['type'], maxItems: 16 });
}

export function localObjectReference(
  description: string,
  nameDescription = 'Name of the object, in the same namespace.',
) {
  return obj(description, { name: dnsSubdomain(nameDescription) });
}

/** A Secret in a named namespace, for cluster-scoped objects that have no namespace of their own. */
export function secretReference(description: string) {
  return obj(description, {
    name: dnsSubdomain('Name of the Secret.'),
    namespace: dnsLabel('Namespace of the Secret.'),
  });
}

export function secretKeySelector(description: string) {
  return obj(description, {
    name: dnsSubdomain('Name of the Secret, in the same namespace.'),
    key: matching("Key within the Secret's data.", SECRET_KEY),
  });
}

const LabelSelectorRequirement = withRules(
  obj('A requirement on one label: key, operator and values.', {
    key: matching('The label key the requirement applies to.', LABEL_KEY),
    operator: oneOf('How the key relates to the values: In, NotIn, Exists or DoesNotExist.', [
      'In',
      'NotIn',
      'Exists',
      'DoesNotExist',
    ]),
    values: Type.Optional(
      listOf(
        'Label values; required for In and NotIn, empty for Exists and DoesNotExist.',
        matching('A label value.', LABEL_VALUE),
        {
          maxItems: 64,
        },
      ),
    ),
  }),
  [
    {
      id: 'selector-in-needs-values',
      cel: "!(self.operator in ['In', 'NotIn']) || (has(self.values) && size(self.values) > 0)",
      message: 'operators In and NotIn need at least one value',
      fieldPath: '.values',
      reason: 'FieldValueRequired',
      holds: (r) => !['In', 'NotIn'].includes(r.operator) || (r.values?.length ?? 0) > 0,
    },
    {
      id: 'selector-exists-forbids-values',
      cel: "!(self.operator in ['Exists', 'DoesNotExist']) || !has(self.values) || size(self.values) == 0",
      message: 'operators Exists and DoesNotExist take no values: remove values',
      fieldPath: '.values',
      reason: 'FieldValueForbidden',
      holds: (r) => !['Exists', 'DoesNotExist'].includes(r.operator) || (r.values?.length ?? 0) === 0,
    },
  ],
);

export function labelSelector(description: string) {
  return obj(description, {
    matchLabels: Type.Optional(
      mapOf('Labels that must all match exactly (label key to value).', matching('A label value.', LABEL_VALUE), {
        maxProperties: 64,
      }),
    ),
    matchExpressions: Type.Optional(
      listOf('Requirements that must all hold.', LabelSelectorRequirement, { maxItems: 32 }),
    ),
  });
}

// ---------------------------------------------------------------------------------------------
// What src/api/crd.ts needs to know about a kind.

export interface PrinterColumn {
  name: string;
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date';
  jsonPath: string;
  description: string;
  priority?: number;
}

export interface ResourceDefinition {
  kind: string;
  plural: string;
  singular: string;
  listKind: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  categories: string[];
  /** What `kubectl explain <kind>` says first. */
  description: string;
  spec: TSchema;
  status: TSchema;
  printerColumns: PrinterColumn[];
}

export const AGE_COLUMN: PrinterColumn = {
  name: 'Age',
  type: 'date',
  jsonPath: '.metadata.creationTimestamp',
  description: 'Time since the object was created.',
};

export function conditionColumn(type: string, description: string): PrinterColumn {
  return { name: type, type: 'string', jsonPath: `.status.conditions[?(@.type=="${type}")].status`, description };
}
