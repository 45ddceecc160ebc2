// Every domain XML of the matrix (KVM and Xen; disks, networks, firmware, CPU and memory sizes)
// passes libvirt's own schema check (virt-xml-validate) and is accepted by defineXML, with
// schema validation, on a test-driver host through the binding and the Hypervisor driver.
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { buildDomainXml } from '../../../src/hypervisors/domain-xml.js';
import { LibvirtConnectionPool } from '../../../src/hypervisors/libvirt/connection-pool.js';
import { LibvirtHypervisor } from '../../../src/hypervisors/libvirt/driver.js';
import { child, parseXml } from '../../../src/hypervisors/xml.js';
import { kvmInput, MATRIX } from '../../unit/domain-xml-matrix.js';
import { testHosts, type TestHosts } from './test-hosts.js';

const run = promisify(execFile);

/** Runs virt-xml-validate; resolves with its verdict instead of throwing, so failures show the output. */
async function validate(file: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run('virt-xml-validate', [file, 'domain']);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` || e.message };
  }
}

describe('domain XML against libvirt', () => {
  let hosts: TestHosts;
  let pool: LibvirtConnectionPool;
  let hypervisor: LibvirtHypervisor;

  beforeAll(async () => {
    // virt-xml-validate (libvirt-clients) runs xmllint (libxml2-utils); say which is missing.
    for (const tool of ['virt-xml-validate', 'xmllint']) {
      await run('sh', ['-c', `command -v ${tool}`]).catch(() => {
        throw new Error(`${tool} is not installed: apt-get install libvirt-clients libxml2-utils`);
      });
    }
    hosts = testHosts();
    pool = new LibvirtConnectionPool();
    hypervisor = new LibvirtHypervisor(pool, hosts.host('validate'));
  });

  afterAll(async () => {
    await pool.closeAll();
    hosts.cleanup();
  });

  it.each(MATRIX)('%s: passes virt-xml-validate', async (name, input) => {
    const file = join(hosts.dir, `${name.replace(/[^A-Za-z0-9]+/g, '-')}.xml`);
    writeFileSync(file, buildDomainXml(input).xml);
    const verdict = await validate(file);
    expect(verdict).toEqual({ ok: true, output: expect.stringContaining('validates') });
  });

  it.each(MATRIX)('%s: is defined by libvirt as written', async (_name, input) => {
    const built = buildDomainXml(input);
    const defined = await hypervisor.ensureDefined(built.xml);
    expect(defined).toEqual({ uuid: input.uid, name: built.name });
    // libvirt's own parser reads back what was meant, e.g. a command line with quotes and '<'.
    const readBack = parseXml(await hypervisor.xml(input.uid, { inactive: true }));
    expect(child(readBack, 'name')?.text).toBe(built.name);
    expect(child(readBack, 'os', 'cmdline')?.text).toBe(input.spec.kernelBoot?.cmdline);
    await hypervisor.undefine(input.uid);
    expect(await hypervisor.lookup(input.uid)).toBeUndefined();
  });

  it('refuses, as invalid-definition, a second UUID under a domain name already taken', async () => {
    const first = kvmInput();
    await hypervisor.ensureDefined(buildDomainXml(first).xml);
    const clash = buildDomainXml({ ...first, uid: '1b8e6f5e-2f5d-4a8e-9f0e-3c1d2b4a5e6f' });
    expect(clash.name).toBe(buildDomainXml(first).name);
    await expect(hypervisor.ensureDefined(clash.xml)).rejects.toMatchObject({
      name: 'HypervisorError',
      kind: 'invalid-definition',
    });
    await hypervisor.undefine(first.uid);
  });
});
