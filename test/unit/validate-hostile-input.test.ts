// `virtfleet validate` on files that are not manifests, or that are built to hurt (issue 11):
// an alias bomb, megabytes of binary, raw control characters, values that would act on a terminal.
// Whatever comes in, the answer is one clean line per problem and exit status 1: no stack trace,
// no raw byte of the input.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { printable } from '../../src/api/problems.js';
import { validateBytes, validateFile, validateText } from '../../src/api/validate.js';
import { runCli, type CliRun } from '../harness/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'virtfleet-hostile-'));

function write(name: string, content: string | Uint8Array): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

/** Nine anchors, each a list of nine aliases to the one before: 9^9 (387 million) leaves. */
function aliasBomb(): string {
  const lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'];
  const names = 'abcdefghi';
  for (let i = 1; i < names.length; i++) {
    lines.push(
      `${names[i]}: &${names[i]} [${Array(9)
        .fill(`*${names[i - 1]}`)
        .join(', ')}]`,
    );
  }
  return `${lines.join('\n')}\n`;
}

/** `size` bytes from a fixed-seed xorshift generator: random-looking, the same on every run. */
function randomBytes(size: number, seed = 0x9e3779b9): Uint8Array {
  const bytes = new Uint8Array(size);
  let x = seed >>> 0;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    bytes[i] = x & 0xff;
  }
  return bytes;
}

/** Printable ASCII and newlines only: what a clean report looks like (the messages here are ASCII). */
const CLEAN = /^[\x20-\x7e\n]*$/;

function virtfleet(...args: string[]): Promise<CliRun> {
  return runCli(args);
}

describe('validateFile on files that are not manifests', () => {
  it('reports a YAML alias bomb as one problem instead of throwing', () => {
    const file = write('bomb.yaml', aliasBomb());
    const report = validateFile(file);
    expect(report.problems).toEqual([
      {
        file,
        line: 1,
        object: 'document 1',
        path: '',
        message: expect.stringMatching(
          /^YAML aliases expand too far \(excessive aliasing, as in a "billion laughs" document\)/,
        ),
      },
    ]);
    expect(report.objects).toBe(0);
  });

  it('reports 5 MB of random bytes as one problem: not a text file, nothing checked', () => {
    const report = validateBytes(randomBytes(5 * 1024 * 1024), 'random.yaml');
    expect(report.problems).toHaveLength(1);
    expect(report.problems[0]?.message).toMatch(/^not a YAML or JSON text file: .*; nothing in it was checked$/);
    expect(report.problems[0]?.message).toMatch(CLEAN);
  });

  it('tells binary without NUL bytes (not UTF-8) from text, and names the offset', () => {
    const bytes = new TextEncoder().encode('apiVersion: v1\nkind: Secret\n');
    const broken = new Uint8Array([...bytes, 0xc3, 0x28]);
    expect(validateBytes(broken, 'x.yaml').problems).toEqual([
      {
        file: 'x.yaml',
        path: '',
        message: `not a YAML or JSON text file: byte 0xc3 at offset ${bytes.length} is not UTF-8 (binary data?); nothing in it was checked`,
      },
    ]);
    // Overlong forms and UTF-16 surrogates encoded in UTF-8 are not UTF-8 either.
    expect(validateBytes(new Uint8Array([0x61, 0xc0, 0xaf]), 'x.yaml').problems[0]?.message).toContain(
      'byte 0xc0 at offset 1',
    );
    expect(validateBytes(new Uint8Array([0x61, 0x62, 0xed, 0xa0, 0x80]), 'x.yaml').problems[0]?.message).toContain(
      'byte 0xed at offset 2',
    );
    // Well-formed UTF-8 of every length is text.
    expect(
      validateBytes(new TextEncoder().encode('apiVersion: v1\nkind: Secret\nmetadata: {name: "é € 😀"}\n'), 'x.yaml')
        .problems,
    ).toEqual([]);
  });

  it('refuses raw control characters other than tab, LF and CR, with their line, escaped', () => {
    const report = validateText('apiVersion: v1\nkind: Secret\nmetadata: {name: "a\x1b[2Jb"}\n', 'esc.yaml');
    expect(report.problems).toEqual([
      {
        file: 'esc.yaml',
        line: 3,
        path: '',
        message:
          'not YAML or JSON text: a raw control character \\x1b in column 20; only tab, LF and CR may appear as they are ' +
          '(write others as escapes in a double-quoted string, e.g. "\\x1b"); nothing in it was checked',
      },
    ]);
    expect(validateText('apiVersion: v1\r\nkind:\tSecret\r\nmetadata: {name: a}\n', 'ok.yaml').problems).toEqual([]);
  });

  it('reports at most 20 YAML syntax errors per file, then how many more', () => {
    const text = Array.from({ length: 30 }, (_, i) => `---\nkey${i}: [unclosed\n`).join('');
    const problems = validateText(text, 'many.yaml').problems;
    expect(problems).toHaveLength(21);
    expect(problems[20]?.message).toMatch(/^\d+ more YAML syntax errors? not shown; fix the ones above first$/);
  });

  it('reports a file it cannot read as a problem, not an exception', () => {
    expect(validateFile(dir).problems).toEqual([
      { file: dir, path: '', message: 'cannot read the file: it is a directory' },
    ]);
  });
});

describe('printable', () => {
  it('escapes C0 and C1 controls, DEL, line and paragraph separators, bidi overrides and lone surrogates', () => {
    expect(printable('a\x00b\x1b[31mc\x7fd\x85e\x9bf\u2028g\u2029h\u202ei\u2066j\ufeffk\ud800l\r\n')).toBe(
      'a\\x00b\\x1b[31mc\\x7fd\\x85e\\x9bf\\u2028g\\u2029h\\u202ei\\u2066j\\ufeffk\\ud800l\\x0d\\x0a',
    );
  });

  it('leaves other Unicode alone', () => {
    expect(printable('José ✓ 東京 😀 a\u00a0b')).toBe('José ✓ 東京 😀 a\u00a0b');
  });
});

describe('virtfleet validate (CLI) on hostile files', () => {
  it('an alias bomb: one line FILE:LINE: document 1: MESSAGE, exit 1, no stack trace', async () => {
    const file = write('cli-bomb.yaml', aliasBomb());
    const run = await virtfleet('validate', file);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe(
      `${file}:1: document 1: YAML aliases expand too far (excessive aliasing, as in a "billion laughs" document): write the values out instead of nesting aliases\n`,
    );
    expect(run.stderr).toBe('virtfleet validate: 1 file, 0 objects: 1 problem in 1 file\n');
  }, 60000);

  it('5 MB of random bytes: one clean line, exit 1, not a byte of the input echoed', async () => {
    const file = write('cli-random.yaml', randomBytes(5 * 1024 * 1024));
    const run = await virtfleet('validate', file);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      new RegExp(
        `^${file.replace(/[.]/g, '\\.')}: not a YAML or JSON text file: [^\\n]*; nothing in it was checked\\n$`,
      ),
    );
    expect(run.stdout).toMatch(CLEAN);
    expect(run.stderr).toMatch(CLEAN);
  }, 60000);

  it('values that would act on a terminal are printed as escapes', async () => {
    // Escapes in a double-quoted YAML string: the file is clean text, the value is not.
    const file = write(
      'cli-escapes.yaml',
      [
        'apiVersion: virtfleet.io/v1alpha1',
        'kind: VirtualMachine',
        'metadata:',
        '  name: "web\\e]0;owned\\a\\u2028\\x85\\u202e"',
        '  labels: {"tier\\e[2J": "web"}',
        'spec: {hostPoolRef: {name: lab}, memory: "1\\e[31mGi"}',
        '',
      ].join('\n'),
    );
    const run = await virtfleet('validate', file);
    expect(run.code).toBe(1);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    expect(run.stdout).toMatch(CLEAN);
    expect(run.stdout).toContain(
      'metadata.name: "web\\u001b]0;owned\\u0007\\u2028\\x85\\u202e" is not a DNS subdomain',
    );
  }, 60000);
});
