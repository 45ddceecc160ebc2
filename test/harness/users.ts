// People for RBAC tests: a client certificate per user, signed by the control plane's CA (so
// kube-apiserver authenticates them as it would any x509 user), and a kubeconfig holding it.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify } from 'yaml';

export interface TestUser {
  name: string;
  kubeConfig: KubeConfig;
  kubeconfigPath: string;
}

/** A certificate `/O=group…/CN=name` signed by `ca`; returns the PEM paths. */
export function clientCert(
  dir: string,
  ca: { cert: string; key: string },
  name: string,
  groups: string[] = [],
): { cert: string; key: string } {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.crt`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n');
  const subject = `${groups.map((g) => `/O=${g}`).join('')}/CN=${name}`;
  // prettier-ignore
  execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', key, '-subj', subject, '-out', csr], { stdio: 'pipe' });
  // prettier-ignore
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '1',
    '-extfile', ext, '-out', cert], { stdio: 'pipe' });
  return { cert, key };
}

/** A kubeconfig for `name` on `server` (its CA `caCert`), with a fresh client certificate. */
export function testUser(
  dir: string,
  server: string,
  ca: { cert: string; key: string },
  name: string,
  groups: string[] = [],
): TestUser {
  const { cert, key } = clientCert(dir, ca, name, groups);
  const b64 = (file: string) => readFileSync(file).toString('base64');
  const path = join(dir, `${name}.kubeconfig`);
  writeFileSync(
    path,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'test', cluster: { server, 'certificate-authority-data': b64(ca.cert) } }],
      users: [{ name, user: { 'client-certificate-data': b64(cert), 'client-key-data': b64(key) } }],
      contexts: [{ name: 'test', context: { cluster: 'test', user: name } }],
      'current-context': 'test',
    }),
    { mode: 0o600 },
  );
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(path);
  return { name, kubeConfig, kubeconfigPath: path };
}
