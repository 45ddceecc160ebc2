import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';
import { buildCrds, type CustomResourceDefinition, type JsonSchema } from '../../src/api/crd.js';
import { renderCrds } from '../../src/api/gen-crds.js';
import { RESOURCES } from '../../src/api/resources.js';
import { collectRules } from '../../src/api/rules.js';
import { objectSchema } from '../../src/api/crd.js';

const crdsDir = fileURLToPath(new URL('../../crds', import.meta.url));
const crds = buildCrds();

function crdFor(kind: string): CustomResourceDefinition {
  const crd = crds.find((c) => c.spec.names.kind === kind);
  if (!crd) throw new Error(`no CRD for ${kind}`);
  return crd;
}

function schemaOf(crd: CustomResourceDefinition): JsonSchema {
  const version = crd.spec.versions[0];
  if (!version) throw new Error(`${crd.metadata.name} has no version`);
  return version.schema.openAPIV3Schema;
}

/** Every schema node below `node` with its path: properties by name, list items as [], map values as {}. */
function nodes(node: JsonSchema, path = ''): { path: string; node: JsonSchema }[] {
  const found = [{ path, node }];
  for (const [name, child] of Object.entries((node.properties as Record<string, JsonSchema> | undefined) ?? {})) {
    found.push(...nodes(child, path ? `${path}.${name}` : name));
  }
  if (typeof node.items === 'object') found.push(...nodes(node.items as JsonSchema, `${path}[]`));
  if (typeof node.additionalProperties === 'object')
    found.push(...nodes(node.additionalProperties as JsonSchema, `${path}{}`));
  return found;
}

// Short names of the built-in resources of Kubernetes 1.36 (kubectl api-resources); kubectl
// prefers those, so a CRD claiming one is never reached by it (`ip` is IPAddress since 1.33).
const BUILT_IN_SHORT_NAMES = [
  'cj',
  'cm',
  'crd',
  'crds',
  'cs',
  'csr',
  'deploy',
  'ds',
  'ep',
  'ev',
  'hpa',
  'ing',
  'ip',
  'limits',
  'netpol',
  'no',
  'ns',
  'pc',
  'pdb',
  'po',
  'pv',
  'pvc',
  'quota',
  'rc',
  'rs',
  'sa',
  'sc',
  'sts',
  'svc',
  'vac',
];

describe('generated CRDs', () => {
  it('crds/ matches src/api/ (otherwise run npm run gen)', () => {
    const rendered = renderCrds();
    const onDisk = readdirSync(crdsDir).filter((name) => name.endsWith('.yaml'));
    const stale = [...rendered]
      .filter(([name, text]) => !onDisk.includes(name) || readFileSync(join(crdsDir, name), 'utf8') !== text)
      .map(([name]) => `crds/${name} is stale or missing: run npm run gen`);
    const extra = onDisk
      .filter((name) => !rendered.has(name))
      .map((name) => `crds/${name} is not generated from src/api/: delete it or run npm run gen`);
    expect([...stale, ...extra]).toEqual([]);
  });

  it('the files on disk parse to exactly the objects built from src/api/', () => {
    for (const crd of crds) {
      expect(parse(readFileSync(join(crdsDir, `${crd.metadata.name}.yaml`), 'utf8'))).toEqual(crd);
    }
  });

  it('serves virtfleet.io/v1alpha1 from storage, with the status subresource', () => {
    for (const crd of crds) {
      expect(crd.spec.group).toBe('virtfleet.io');
      expect(crd.spec.versions).toHaveLength(1);
      expect(crd.spec.versions[0]).toMatchObject({
        name: 'v1alpha1',
        served: true,
        storage: true,
        subresources: { status: {} },
      });
      expect(crd.spec.names.categories).toEqual(['virtfleet']);
    }
  });

  it('names the kinds as documented: vm, hp and iprof; pools are cluster-scoped', () => {
    expect(crdFor('VirtualMachine').spec).toMatchObject({
      scope: 'Namespaced',
      names: { plural: 'virtualmachines', shortNames: ['vm'] },
    });
    expect(crdFor('HostPool').spec).toMatchObject({
      scope: 'Cluster',
      names: { plural: 'hostpools', shortNames: ['hp'] },
    });
    expect(crdFor('InstallProfile').spec).toMatchObject({
      scope: 'Namespaced',
      names: { plural: 'installprofiles', shortNames: ['iprof'] },
    });
  });

  it('claims no short name that a built-in resource already has', () => {
    const clashes = crds.flatMap((crd) =>
      crd.spec.names.shortNames.filter((name) => BUILT_IN_SHORT_NAMES.includes(name)),
    );
    expect(clashes).toEqual([]);
  });

  it('has the printer columns kubectl get shows', () => {
    const columns = (kind: string) =>
      crdFor(kind).spec.versions[0]?.additionalPrinterColumns.map((c) => (c as { name: string }).name);
    expect(columns('VirtualMachine')).toEqual(['Phase', 'Host', 'Hypervisor', 'IP', 'Ready', 'Age']);
    expect(columns('HostPool')).toEqual(['Ready', 'Hosts-Ready', 'Hosts', 'Strategy', 'Age']);
    expect(columns('InstallProfile')).toEqual(['Valid', 'OS', 'Version', 'Boot', 'Age']);
  });

  it('gives every schema node a type (structural) and a description (kubectl explain)', () => {
    const missing = crds.flatMap((crd) =>
      nodes(schemaOf(crd))
        .filter(({ path }) => path !== 'metadata')
        .flatMap(({ path, node }) => [
          ...(typeof node.type === 'string' ? [] : [`${crd.spec.names.kind} ${path}: no type`]),
          ...(typeof node.description === 'string' && node.description.length > 0
            ? []
            : [`${crd.spec.names.kind} ${path}: no description`]),
        ]),
    );
    expect(missing).toEqual([]);
  });

  it('leaves metadata to the API server', () => {
    for (const crd of crds)
      expect((schemaOf(crd).properties as Record<string, unknown>).metadata).toEqual({ type: 'object' });
  });

  it('uses only what a structural schema allows: no $ref, no unions, maps through additionalProperties alone', () => {
    const problems = crds.flatMap((crd) =>
      nodes(schemaOf(crd)).flatMap(({ path, node }) => {
        const found: string[] = [];
        for (const keyword of ['$ref', '$id', 'anyOf', 'oneOf', 'allOf', 'not', 'patternProperties', 'const']) {
          if (keyword in node) found.push(`${crd.spec.names.kind} ${path}: ${keyword}`);
        }
        if ('properties' in node && 'additionalProperties' in node)
          found.push(`${crd.spec.names.kind} ${path}: properties and additionalProperties`);
        return found;
      }),
    );
    expect(problems).toEqual([]);
  });

  it('bounds every spec string, list and map, so CEL cost estimates stay finite and no value is unbounded', () => {
    const unbounded = crds.flatMap((crd) =>
      nodes((schemaOf(crd).properties as Record<string, JsonSchema>).spec as JsonSchema, 'spec').flatMap(
        ({ path, node }) => {
          if (node.type === 'string' && node.maxLength === undefined && node.enum === undefined)
            return [`${path}: string without maxLength`];
          if (node.type === 'array' && node.maxItems === undefined) return [`${path}: list without maxItems`];
          if (node.type === 'object' && node.additionalProperties !== undefined && node.maxProperties === undefined)
            return [`${path}: map without maxProperties`];
          return [];
        },
      ),
    );
    expect(unbounded).toEqual([]);
  });

  it('makes named lists list-maps, so the API server refuses duplicate names', () => {
    const spec = (kind: string) => (schemaOf(crdFor(kind)).properties as Record<string, JsonSchema>).spec as JsonSchema;
    const at = (kind: string, path: string) => nodes(spec(kind), 'spec').find((n) => n.path === path)?.node;
    for (const [kind, path, key] of [
      ['VirtualMachine', 'spec.disks', 'name'],
      ['VirtualMachine', 'spec.networks', 'name'],
      ['HostPool', 'spec.hosts', 'name'],
      ['InstallProfile', 'spec.users', 'name'],
      ['InstallProfile', 'spec.repos', 'name'],
      ['InstallProfile', 'spec.partitioning.parts', 'mountPoint'],
    ] as const) {
      expect(at(kind, path)).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': [key] });
    }
  });

  it('carries every cross-field rule into the CRD at the node it was declared on', () => {
    for (const resource of RESOURCES) {
      const schema = schemaOf(crdFor(resource.kind));
      const byPath = new Map(nodes(schema).map(({ path, node }) => [path, node]));
      for (const { at, rule } of collectRules(objectSchema(resource))) {
        const emitted = (byPath.get(at)?.['x-kubernetes-validations'] as { rule: string }[] | undefined) ?? [];
        expect(emitted.map((r) => r.rule)).toContain(rule.cel);
      }
    }
  });
});
