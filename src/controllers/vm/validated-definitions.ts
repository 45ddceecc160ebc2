// Which domain definitions a host's libvirt has already checked against its schema. libvirt's
// schema validation (VIR_DOMAIN_DEFINE_VALIDATE) costs 11–17 ms per define whatever the XML's
// size (it parses its RNG schema each time; bench/scale), most of a new VM's own time. It is
// asked once per definition *shape*: the VM's XML built again with a placeholder identity (UID,
// namespace, name; the MACs and paths derived from them follow), on the same libvirt driver and
// version. A definition whose shape passed before is defined without the flag; libvirt's own
// parse still checks the identity values it differs by (a UUID, a name, a MAC are parsed
// strictly). Remembered in memory only, bounded: after a restart each shape is validated again.
import { createHash } from 'node:crypto';
import type { HostFacts } from '../../hypervisors/hypervisor.js';
import type { VmObject } from '../resources.js';

/** The identity every shape is built with. */
const PLACEHOLDER = { uid: '00000000-0000-4000-8000-000000000000', namespace: 'shape', name: 'shape' } as const;

/** A copy of `vm` under the placeholder identity, for building its definition's shape. */
export function withPlaceholderIdentity(vm: VmObject): VmObject {
  return { ...vm, metadata: { ...vm.metadata, ...PLACEHOLDER } };
}

export class ValidatedDefinitions {
  private readonly keys = new Set<string>();

  constructor(private readonly max = 4096) {}

  /** The key of a shape on a host's libvirt: its driver and version, and a digest of the XML. */
  key(facts: Pick<HostFacts, 'driver' | 'libvirtVersion' | 'hypervisorVersion'>, shapeXml: string): string {
    const digest = createHash('sha256').update(shapeXml).digest('base64url');
    return `${facts.driver}/${facts.libvirtVersion}/${facts.hypervisorVersion}/${digest}`;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Remembers a shape that passed; the oldest goes beyond `max`. */
  add(key: string): void {
    this.keys.delete(key);
    this.keys.add(key);
    if (this.keys.size > this.max) {
      const oldest = this.keys.values().next().value;
      if (oldest !== undefined) this.keys.delete(oldest);
    }
  }

  get size(): number {
    return this.keys.size;
  }
}
