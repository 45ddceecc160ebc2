// The cloud-init NoCloud seed of a VM (spec.cloudInit): an ISO 9660 volume labelled `cidata` with
// the files user-data, meta-data and (when given) network-config, as cloud-init's NoCloud
// datasource reads them from a CD-ROM. meta-data is ours: instance-id is the VM's UID (a new VM
// of the same name is a new instance, so cloud-init runs its first boot again) and
// local-hostname the VM's name. Pure: the caller reads the Secrets and writes the volume.
//
// User data and network config may come from a Secret, so no error here ever quotes them: a YAML
// problem is named by line and column only.
import { LineCounter, parseDocument, stringify } from 'yaml';
import { buildIso9660 } from './iso9660.js';

/** The most bytes (UTF-8) of user data and of network config; the API's maxLength is the same in characters. */
export const MAX_USER_DATA_BYTES = 64 * 1024;
export const MAX_NETWORK_CONFIG_BYTES = 64 * 1024;
export const SEED_VOLUME_ID = 'cidata';

export interface SeedInput {
  /** The VM's UID: meta-data instance-id. */
  instanceId: string;
  /** The VM's name: meta-data local-hostname. */
  hostname: string;
  /** user-data as given; '' when the spec has none (cloud-init then applies its defaults). */
  userData: string;
  networkConfig?: string;
  /** Where each value came from, for messages: e.g. 'spec.cloudInit.userData' or 'Secret seed key user-data'. */
  userDataField: string;
  networkConfigField?: string;
  /** Recorded in the image; the VM's creation time, so one spec always gives the same bytes. */
  date: Date;
}

/** A value that cannot go into the seed; `field` names where it came from. */
export class CloudInitError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export interface Seed {
  iso: Buffer;
  files: { 'user-data': string; 'meta-data': string; 'network-config'?: string };
}

export function metaData(instanceId: string, hostname: string): string {
  // stringify quotes whatever YAML would read as something else (e.g. a name like `true` or `1e3`).
  return stringify({ 'instance-id': instanceId, 'local-hostname': hostname });
}

/** Renders the seed; throws CloudInitError naming the field of the first value it refuses. */
export function renderSeed(input: SeedInput): Seed {
  checkSize(input.userDataField, input.userData, MAX_USER_DATA_BYTES);
  if (/^#cloud-config[ \t]*\r?\n/.test(input.userData) || input.userData.trimEnd() === '#cloud-config') {
    const value = parseYaml(input.userDataField, input.userData, '#cloud-config user data');
    if (value !== null && !isMapping(value))
      throw new CloudInitError(input.userDataField, '#cloud-config user data must be a YAML mapping (key: value)');
  }
  const files: Seed['files'] = {
    'user-data': input.userData,
    'meta-data': metaData(input.instanceId, input.hostname),
  };
  if (input.networkConfig !== undefined) {
    const field = input.networkConfigField ?? 'spec.cloudInit.networkConfig';
    checkSize(field, input.networkConfig, MAX_NETWORK_CONFIG_BYTES);
    checkNetworkConfig(field, input.networkConfig);
    files['network-config'] = input.networkConfig;
  }
  const iso = buildIso9660(
    Object.entries(files).map(([name, text]) => ({ name, content: Buffer.from(text, 'utf8') })),
    { volumeId: SEED_VOLUME_ID, date: input.date },
  );
  return { iso, files };
}

function checkSize(field: string, text: string, max: number): void {
  const bytes = Buffer.byteLength(text, 'utf8');
  if (bytes > max)
    throw new CloudInitError(
      field,
      `is ${bytes} bytes; at most ${max} fit a NoCloud seed here (compress it with gzip+base64 write_files, or fetch the rest with #include)`,
    );
}

function checkNetworkConfig(field: string, text: string): void {
  const value = parseYaml(field, text, 'network config');
  if (!isMapping(value)) throw new CloudInitError(field, 'network config must be a YAML mapping with version: 1 or 2');
  const inner = isMapping(value.network) ? value.network : value;
  if (inner.version !== 1 && inner.version !== 2)
    throw new CloudInitError(field, 'network config needs version: 1 or version: 2 (at the top or under network:)');
}

function parseYaml(field: string, text: string, what: string): unknown {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { prettyErrors: false, uniqueKeys: true, lineCounter });
  const error = document.errors[0];
  if (error) {
    // Position and code only: the message would quote the text, which may be a Secret's.
    const at = lineCounter.linePos(error.pos[0]);
    throw new CloudInitError(
      field,
      `${what} is not valid YAML (${error.code}${at ? ` at line ${at.line}, column ${at.col}` : ''})`,
    );
  }
  return document.toJS() as unknown;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
