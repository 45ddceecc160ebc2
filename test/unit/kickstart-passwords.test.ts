// Passwords for Kickstart: SHA-512 crypt as glibc and OpenSSL compute it, what a Secret value
// may be (a ready hash, or a plaintext to hash), salts that are stable per Secret version, and
// messages that name Secrets and keys but never a value.
import { execFileSync } from 'node:child_process';
import { describe, expect, it, jest } from '@jest/globals';
import type { InstallProfileSpec } from '../../src/api/installprofile.js';
import { derivedSalt, passwordHash, type PasswordSource } from '../../src/provisioning/passwords.js';
import {
  HashMemo,
  resolvePasswords,
  type SecretLookup,
  type SecretLookupResult,
} from '../../src/provisioning/profile-secrets.js';
import { renderProfile } from '../../src/provisioning/profile.js';
import { sha512Crypt } from '../../src/provisioning/sha512-crypt.js';

/** `openssl passwd -6 -salt SALT` of a password (given on stdin, so it may start with '-'). */
function openssl(password: string, salt: string): string {
  return execFileSync('openssl', ['passwd', '-6', '-salt', salt, '-stdin'], {
    input: `${password}\n`,
    encoding: 'utf8',
  }).trim();
}

const b64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
const READY = '$6$abcdefgh$bp46WUxDu2cphMRE0PvVJlqas2imuSq186YS793XKfmqn9XUEL17HECskUTZInaNigNndLLYc7A6yWBmFEFn3/';
const PLAINTEXT = 'correct "horse" battery $taple';

function source(value: string | Buffer, key = 'password', seed = 'uid:1234\u00007'): PasswordSource {
  return {
    label: `Secret ns/pw key ${key}`,
    key,
    value: typeof value === 'string' ? Buffer.from(value, 'utf8') : value,
    saltSeed: seed,
  };
}

describe('sha512Crypt', () => {
  it("matches the specification's test vectors", () => {
    expect(sha512Crypt('Hello world!', 'saltstring')).toBe(
      '$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1',
    );
    expect(sha512Crypt('Hello world!', 'saltstringsaltstring', 10000)).toBe(
      '$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.',
    );
  });

  const PASSWORDS = [
    'a',
    'Hello world!',
    'pässwörd ☃ 🔑',
    '-starts-with-dash',
    'x'.repeat(64),
    'y'.repeat(65),
    'z'.repeat(200),
    ' spaces and "quotes" \\ $HOME ',
  ];
  const SALTS = ['saltstring', 'a', 'AbCdEf./01234567', 'toolongsaltstring0123'];

  it.each(PASSWORDS)('equals `openssl passwd -6 -salt SALT` for %j', (password) => {
    for (const salt of SALTS) expect(sha512Crypt(password, salt)).toBe(openssl(password, salt));
  });

  it('equals openssl with rounds, clamped to at least 1000 as glibc does', () => {
    expect(sha512Crypt('Hello world!', 'roundstoolow', 10)).toBe(openssl('Hello world!', 'rounds=10$roundstoolow'));
    expect(sha512Crypt('pw', 'salt', 12345)).toBe(openssl('pw', 'rounds=12345$salt'));
  });

  it('refuses a salt that would break the hash format', () => {
    expect(() => sha512Crypt('pw', 'a$b')).toThrow(/salt/);
    expect(() => sha512Crypt('pw', 'a b')).toThrow(/salt/);
  });
});

describe('passwordHash: what a Secret value may be', () => {
  it('takes a ready hash as it is, dropping the newline `--from-file` keeps', () => {
    expect(passwordHash(source(`${READY}\n`, 'password-hash'))).toEqual({ ok: true, hash: READY, hashed: false });
    for (const hash of [
      '$5$rounds=10000$saltstringsaltst$3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA',
      '$y$j9T$F5Jx5fExrKuPp53xLKQ..1$X3DX6M94c7o.9agCG9G317fhZg9SqC.5i5rd.RhAtQ7',
      '$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW',
    ]) {
      expect(passwordHash(source(hash, 'hash'))).toEqual({ ok: true, hash, hashed: false });
    }
  });

  it('hashes a plaintext with SHA-512 crypt; openssl with the same salt agrees', () => {
    const result = passwordHash(source(PLAINTEXT));
    expect(result).toMatchObject({ ok: true, hashed: true });
    const hash = (result as { hash: string }).hash;
    const salt = hash.split('$')[2]!;
    expect(salt).toMatch(/^[./0-9A-Za-z]{16}$/);
    expect(hash).toBe(openssl(PLAINTEXT, salt));
  });

  it("derives the salt from the Secret's identity and the key: stable for one Secret version, new with the next", () => {
    const hashOf = (seed: string, key = 'password') =>
      (passwordHash(source(PLAINTEXT, key, seed)) as { hash: string }).hash;
    expect(hashOf('uid:a\u00001')).toBe(hashOf('uid:a\u00001'));
    expect(hashOf('uid:a\u00002')).not.toBe(hashOf('uid:a\u00001'));
    expect(hashOf('uid:b\u00001')).not.toBe(hashOf('uid:a\u00001'));
    expect(hashOf('uid:a\u00001', 'root-password')).not.toBe(hashOf('uid:a\u00001'));
    // The salt does not depend on the password (it would let a guess be checked without the rounds).
    expect(derivedSalt('uid:a\u00001', 'password')).toBe(
      (passwordHash(source('another one', 'password', 'uid:a\u00001')) as { hash: string }).hash.split('$')[2],
    );
  });

  const REFUSED: Array<[string, string | Buffer, string, RegExp]> = [
    [
      'a placeholder under a hash key',
      '$6$CHANGEME$REPLACE-WITH-THE-OUTPUT-OF-openssl-passwd-6',
      'password-hash',
      /holds no crypt hash/,
    ],
    ['a plaintext under a hash key', PLAINTEXT, 'root.crypt', /holds no crypt hash/],
    ['MD5 crypt', '$1$saltsalt$qjXMvbEw8oaL.CzflDugX/', 'password', /too weak/],
    ['a truncated hash', READY.slice(0, 40), 'password', /starts like a crypt hash/],
    ['a plaintext with the trailing newline of --from-file', `${PLAINTEXT}\n`, 'password', /ends with a line break/],
    ['a plaintext with a control character', 'pass\u0007word', 'password', /control characters/],
    ['an empty value', '', 'password', /is empty/],
    ['bytes that are not UTF-8', Buffer.from([0x70, 0xff, 0xfe]), 'password', /not UTF-8/],
    ['a very long plaintext', 'p'.repeat(300), 'password', /longer than 256 bytes/],
  ];

  it.each(REFUSED)('refuses %s, naming the Secret and key but not the value', (_what, value, key, message) => {
    const result = passwordHash(source(value, key));
    expect(result.ok).toBe(false);
    const text = (result as { message: string }).message;
    expect(text).toMatch(message);
    expect(text).toContain(`Secret ns/pw key ${key}`);
    const shown = typeof value === 'string' ? value.trim() : '';
    if (shown.length > 3) expect(text).not.toContain(shown);
  });
});

function secretWith(name: string, data: Record<string, string>, resourceVersion = '1'): SecretLookupResult {
  return {
    status: 'found',
    secret: { metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion }, data },
  };
}

const SPEC = {
  os: { family: 'rhel', name: 'Rocky', version: '9.4' },
  installTree: 'https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
  rootPassword: { secretKeyRef: { name: 'pw', key: 'root' } },
  users: [
    { name: 'admin', passwordSecretRef: { name: 'pw', key: 'admin-hash' } },
    { name: 'ops', passwordSecretRef: { name: 'other', key: 'password' } },
  ],
} as unknown as InstallProfileSpec;

describe('resolvePasswords', () => {
  it('reads each Secret once and hashes what needs hashing', async () => {
    const lookup = jest.fn<SecretLookup>(async (name) =>
      name === 'pw'
        ? secretWith('pw', { root: b64(PLAINTEXT), 'admin-hash': b64(READY) })
        : secretWith('other', { password: b64('ops-pass') }),
    );
    const resolution = await resolvePasswords(SPEC, 'ns', lookup);
    expect(lookup.mock.calls.map(([name]) => name)).toEqual(['pw', 'other']);
    expect(resolution.problems).toEqual([]);
    expect(resolution.passwords.users.admin).toBe(READY);
    expect(resolution.passwords.root).toMatch(/^\$6\$[./0-9A-Za-z]{16}\$/);
    expect(resolution.versions).toEqual(['ns/other@1', 'ns/pw@1']);
  });

  it('reports a missing Secret, a forbidden one and a missing key on the reference, listing keys but no values', async () => {
    const lookup: SecretLookup = async (name) =>
      name === 'pw'
        ? secretWith('pw', { root: b64('s3cr3t-value'), unrelated: b64('other-value') })
        : { status: 'forbidden', message: 'grant me' };
    const resolution = await resolvePasswords(SPEC, 'ns', lookup);
    expect(resolution.problems).toEqual([
      {
        path: 'spec.users[0].passwordSecretRef',
        kind: 'invalid',
        message: 'Secret ns/pw has no key admin-hash (its keys: root, unrelated); add it or correct the key',
      },
      { path: 'spec.users[1].passwordSecretRef', kind: 'forbidden', message: 'cannot read Secret ns/other: grant me' },
    ]);
    const missing = await resolvePasswords(SPEC, 'ns', async () => ({ status: 'not-found' }));
    expect(missing.problems[0]).toEqual({
      path: 'spec.rootPassword.secretKeyRef',
      kind: 'not-found',
      message: 'Secret ns/pw does not exist; create it with the key root',
    });
    expect(JSON.stringify([resolution, missing])).not.toMatch(/s3cr3t-value|other-value/);
  });

  it('remembers the hash of a plaintext per Secret version', async () => {
    const memo = new HashMemo();
    const lookup: SecretLookup = async (name) =>
      secretWith(name, { root: b64(PLAINTEXT), 'admin-hash': b64(READY), password: b64('ops') });
    const first = await resolvePasswords(SPEC, 'ns', lookup, memo);
    expect(memo.get('uid-pw\u00001\u0000root')).toBe(first.passwords.root);
    const again = await resolvePasswords(SPEC, 'ns', lookup, memo);
    expect(again.passwords).toEqual(first.passwords);
  });
});

describe('renderProfile: the plaintext never reaches the file', () => {
  it('gives a user called __proto__ (a valid Linux name) its own password', async () => {
    const spec = {
      ...SPEC,
      users: [{ name: '__proto__', passwordSecretRef: { name: 'pw', key: 'admin-hash' } }],
    } as unknown as InstallProfileSpec;
    const result = await renderProfile({ namespace: 'ns', name: 'p', spec }, async () =>
      secretWith('pw', { root: b64(READY), 'admin-hash': b64(READY) }),
    );
    expect(result.ok && result.text).toContain(`user --name=__proto__ --iscrypted --password=${READY}\n`);
  });

  const lookup =
    (resourceVersion: string): SecretLookup =>
    async (name) =>
      secretWith(name, { root: b64(PLAINTEXT), 'admin-hash': b64(READY), password: b64('ops-pass') }, resourceVersion);

  it('renders the hash openssl would make with its salt, the same on every render of the same Secret version', async () => {
    const first = await renderProfile({ namespace: 'ns', name: 'p', spec: SPEC }, lookup('1'));
    const second = await renderProfile({ namespace: 'ns', name: 'p', spec: SPEC }, lookup('1'));
    if (!first.ok || !second.ok) throw new Error('did not render');
    expect(second.text).toBe(first.text);
    expect(second.hash).toBe(first.hash);
    const rootpw = first.text.split('\n').find((line) => line.startsWith('rootpw '))!;
    const hash = rootpw.split(' ')[2]!;
    expect(hash).toBe(openssl(PLAINTEXT, hash.split('$')[2]!));
    for (const plain of [PLAINTEXT, 'ops-pass', b64(PLAINTEXT)]) expect(first.text).not.toContain(plain);

    const rotated = await renderProfile({ namespace: 'ns', name: 'p', spec: SPEC }, lookup('2'));
    expect(rotated.ok && rotated.hash).not.toBe(first.hash);
  });
});
