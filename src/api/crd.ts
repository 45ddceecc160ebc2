// Builds the apiextensions.k8s.io/v1 CustomResourceDefinitions from the TypeBox schemas.
//
// The schemas are already shaped for structural CRDs (see the builders in common.ts); this module
// drops TypeBox's bookkeeping (symbol keys, $id), turns attached rules into
// x-kubernetes-validations, and refuses anything the API server would reject or silently ignore,
// so a mistake in src/api/ fails `npm run gen` instead of a kubectl apply.
import { API_VERSION, GROUP, VERSION, type ResourceDefinition } from './common.js';
import { RESOURCES } from './resources.js';
import { RULES_KEYWORD, rulesOf, toCrdRule } from './rules.js';

/** The OpenAPI extensions of Kubernetes that a CRD schema may carry. */
export const KUBERNETES_EXTENSIONS = [
  RULES_KEYWORD,
  'x-kubernetes-list-type',
  'x-kubernetes-list-map-keys',
  'x-kubernetes-map-type',
  'x-kubernetes-int-or-string',
  'x-kubernetes-preserve-unknown-fields',
  'x-kubernetes-embedded-resource',
] as const;

export type JsonSchema = { [keyword: string]: unknown };

/**
 * Keywords a structural CRD schema may carry, in the order they are written out (so the YAML
 * reads type first, then description). Anything else is an error.
 */
const CRD_KEYWORDS = [
  'type',
  'description',
  'format',
  'enum',
  'default',
  'nullable',
  'pattern',
  'minLength',
  'maxLength',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minItems',
  'maxItems',
  'uniqueItems',
  'minProperties',
  'maxProperties',
  'required',
  'properties',
  'items',
  'additionalProperties',
  ...KUBERNETES_EXTENSIONS,
];
/** Added by TypeBox; meaningless to the API server. */
const IGNORED_KEYWORDS = new Set(['$id', '$schema', 'title']);

/** The whole object's schema, as the builders made it (rules still attached as functions). */
export function objectSchema(resource: ResourceDefinition): JsonSchema {
  return {
    type: 'object',
    description: resource.description,
    required: ['spec'],
    properties: {
      apiVersion: {
        type: 'string',
        description: `APIVersion defines the versioned schema of this representation of an object: ${API_VERSION}.`,
      },
      kind: {
        type: 'string',
        description: `Kind is a string value representing the REST resource this object represents: ${resource.kind}.`,
      },
      // The API server validates metadata itself; a schema here may only narrow name/generateName.
      metadata: { type: 'object' },
      spec: resource.spec,
      status: resource.status,
    },
  };
}

/** A plain, structural OpenAPI v3 schema for a CRD; throws on anything a CRD cannot hold. */
export function toStructural(node: object, path = '<root>'): JsonSchema {
  const source = node as JsonSchema;
  if (typeof source.type !== 'string') throw new Error(`${path}: every schema node needs a type (structural schema)`);
  if (source.properties !== undefined && source.additionalProperties !== undefined) {
    throw new Error(`${path}: properties and additionalProperties exclude each other in a CRD schema`);
  }
  for (const key of Object.keys(source)) {
    if (!CRD_KEYWORDS.includes(key) && !IGNORED_KEYWORDS.has(key)) {
      throw new Error(`${path}: keyword ${key} is not allowed in a structural CRD schema`);
    }
  }
  const out: JsonSchema = {};
  for (const key of CRD_KEYWORDS) {
    const value = source[key];
    if (value === undefined) continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(
        Object.entries(value as Record<string, object>).map(([name, child]) => [
          name,
          toStructural(child, `${path}.${name}`),
        ]),
      );
    } else if (key === 'items') {
      out.items = toStructural(value as object, `${path}[]`);
    } else if (key === 'additionalProperties') {
      out.additionalProperties = typeof value === 'object' ? toStructural(value as object, `${path}{}`) : value;
    } else if (key === RULES_KEYWORD) {
      out[key] = rulesOf(source).map(toCrdRule);
    } else {
      out[key] = structuredClone(value);
    }
  }
  return out;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels: Record<string, string> };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames: string[];
      categories: string[];
    };
    scope: 'Namespaced' | 'Cluster';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      subresources: { status: Record<string, never> };
      additionalPrinterColumns: object[];
      schema: { openAPIV3Schema: JsonSchema };
    }[];
  };
}

export function crdName(resource: ResourceDefinition): string {
  return `${resource.plural}.${GROUP}`;
}

export function buildCrd(resource: ResourceDefinition): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: crdName(resource), labels: { 'app.kubernetes.io/part-of': 'virtfleet' } },
    spec: {
      group: GROUP,
      names: {
        kind: resource.kind,
        listKind: resource.listKind,
        plural: resource.plural,
        singular: resource.singular,
        shortNames: [...resource.shortNames],
        categories: [...resource.categories],
      },
      scope: resource.scope,
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: resource.printerColumns.map((column) => ({ ...column })),
          schema: { openAPIV3Schema: toStructural(objectSchema(resource)) },
        },
      ],
    },
  };
}

export function buildCrds(): CustomResourceDefinition[] {
  return RESOURCES.map(buildCrd);
}
