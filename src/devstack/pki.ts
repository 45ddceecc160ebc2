// Certificates of the local control plane, made with the openssl command as
// controller-runtime's envtest does: a CA, the API server's serving cert for
// 127.0.0.1, an admin client cert in system:masters, kube-controller-manager's
// client cert (user system:kube-controller-manager, which Kubernetes' bootstrap
// RBAC binds to the role of that name), the service-account signing key pair, and for API
// aggregation a front-proxy CA with the aggregator's client cert (CN front-proxy-client, as
// kubeadm names it) plus a serving cert for `virtfleet api` under its Service's DNS name.
// Existing files are kept, so `make run` reuses them.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Pki {
  dir: string;
  caCert: string;
  servingCert: string;
  servingKey: string;
  adminCert: string;
  adminKey: string;
  controllerManagerCert: string;
  controllerManagerKey: string;
  /** The CA's key: kube-controller-manager signs CertificateSigningRequests with it. */
  caKey: string;
  serviceAccountKey: string;
  serviceAccountPub: string;
  /** The requestheader CA: aggregated API servers trust X-Remote-* headers only from clients it signed. */
  frontProxyCaCert: string;
  frontProxyCaKey: string;
  /** kube-apiserver's client cert towards aggregated API servers (--proxy-client-cert-file). */
  frontProxyClientCert: string;
  frontProxyClientKey: string;
  /** `virtfleet api`'s serving cert (signed by caCert), for its Service name and 127.0.0.1. */
  apiServingCert: string;
  apiServingKey: string;
}

/** The CN of the front-proxy client cert, the one name in --requestheader-allowed-names. */
export const FRONT_PROXY_CLIENT_CN = 'front-proxy-client';
/** Where `virtfleet api` runs in the local stack and the tests: the names its serving cert carries. */
export const API_SERVICE = { namespace: 'virtfleet-system', name: 'virtfleet-api' } as const;

export function pkiPaths(dir: string): Pki {
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    servingCert: join(dir, 'apiserver.crt'),
    servingKey: join(dir, 'apiserver.key'),
    adminCert: join(dir, 'admin.crt'),
    adminKey: join(dir, 'admin.key'),
    controllerManagerCert: join(dir, 'controller-manager.crt'),
    controllerManagerKey: join(dir, 'controller-manager.key'),
    caKey: join(dir, 'ca.key'),
    serviceAccountKey: join(dir, 'sa.key'),
    serviceAccountPub: join(dir, 'sa.pub'),
    frontProxyCaCert: join(dir, 'front-proxy-ca.crt'),
    frontProxyCaKey: join(dir, 'front-proxy-ca.key'),
    frontProxyClientCert: join(dir, 'front-proxy-client.crt'),
    frontProxyClientKey: join(dir, 'front-proxy-client.key'),
    apiServingCert: join(dir, 'virtfleet-api.crt'),
    apiServingKey: join(dir, 'virtfleet-api.key'),
  };
}

async function openssl(args: string[]): Promise<void> {
  try {
    await run('openssl', args);
  } catch (error) {
    const detail = (error as { stderr?: string }).stderr ?? String(error);
    throw new Error(
      `openssl ${args[0]} failed: ${detail.trim()} (is the openssl package installed? hack/setup.sh installs it)`,
      { cause: error },
    );
  }
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function signedCert(
  pki: Pki,
  name: string,
  subject: string,
  extensions: string,
  ca: { cert: string; key: string } = { cert: pki.caCert, key: pki.caKey },
): Promise<void> {
  const key = join(pki.dir, `${name}.key`);
  const csr = join(pki.dir, `${name}.csr`);
  const ext = join(pki.dir, `${name}.ext`);
  writeFileSync(ext, extensions);
  await openssl(['req', '-new', ...EC_KEY, '-keyout', key, '-subj', subject, '-out', csr]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca.cert,
    '-CAkey',
    ca.key,
    '-CAcreateserial',
    '-days',
    '3650',
    '-extfile',
    ext,
    '-out',
    join(pki.dir, `${name}.crt`),
  ]);
}

async function selfSignedCa(cert: string, key: string, cn: string): Promise<void> {
  await openssl(['req', '-x509', ...EC_KEY, '-keyout', key, '-out', cert, '-days', '3650', '-subj', `/CN=${cn}`]);
}

const CLIENT_EXT = 'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n';

/** Creates whatever certificate or key is missing under `dir`. */
export async function ensurePki(dir: string): Promise<Pki> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pki = pkiPaths(dir);
  if (!existsSync(pki.caCert)) await selfSignedCa(pki.caCert, pki.caKey, 'virtfleet-local-ca');
  if (!existsSync(pki.servingCert)) {
    await signedCert(
      pki,
      'apiserver',
      '/CN=kube-apiserver',
      'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
    );
  }
  if (!existsSync(pki.adminCert)) {
    await signedCert(
      pki,
      'admin',
      '/O=system:masters/CN=virtfleet-admin',
      'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
    );
  }
  if (!existsSync(pki.controllerManagerCert)) {
    await signedCert(
      pki,
      'controller-manager',
      '/CN=system:kube-controller-manager',
      'extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
    );
  }
  if (!existsSync(pki.serviceAccountPub)) {
    await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', pki.serviceAccountKey]);
    await openssl(['ec', '-in', pki.serviceAccountKey, '-pubout', '-out', pki.serviceAccountPub]);
  }
  if (!existsSync(pki.frontProxyCaCert))
    await selfSignedCa(pki.frontProxyCaCert, pki.frontProxyCaKey, 'virtfleet-front-proxy-ca');
  if (!existsSync(pki.frontProxyClientCert)) {
    await signedCert(pki, 'front-proxy-client', `/CN=${FRONT_PROXY_CLIENT_CN}`, CLIENT_EXT, {
      cert: pki.frontProxyCaCert,
      key: pki.frontProxyCaKey,
    });
  }
  if (!existsSync(pki.apiServingCert)) {
    const { name, namespace } = API_SERVICE;
    await signedCert(
      pki,
      'virtfleet-api',
      `/CN=${name}.${namespace}.svc`,
      `subjectAltName=DNS:${name}.${namespace}.svc,DNS:${name}.${namespace}.svc.cluster.local,IP:127.0.0.1\n` +
        'extendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n',
    );
  }
  return pki;
}
