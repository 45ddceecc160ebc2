// `virtfleet validate <paths...>`: check manifests offline, before kubectl apply.
//
// Output, one line per problem on stdout:
//   FILE:LINE: Kind/name: PATH: MESSAGE
// e.g.
//   manifests/web.yaml:9: VirtualMachine/web-1: spec.memory: "2GB" is not a Kubernetes quantity (use e.g. 2Gi or 2048Mi)
// FILE is the path as given (directories are searched recursively); LINE is where the field (or,
// when it is missing, its parent) starts; an object without kind or name shows as `document N`
// (N counts from 1 within the file). YAML syntax errors have no PATH; a file that is not text (binary
// data, not UTF-8, raw control characters) or whose aliases expand too far is one line without one.
// No line ever carries a raw control character, line separator or bidi override: they are printed
// as escapes (\x1b, \u2028), so a hostile manifest cannot act on the terminal or the CI log.
// A summary goes to stderr.
// Exit status: 0 no problems, 1 problems found, 2 usage error (e.g. a path that does not exist).
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { printable } from '../api/problems.js';
import { validateFile, type FileProblem } from '../api/validate.js';

export const EXIT_OK = 0;
export const EXIT_PROBLEMS = 1;
export const EXIT_USAGE = 2;

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

export interface Output {
  out: (line: string) => void;
  err: (line: string) => void;
}

const processOutput: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** `output` with every line made printable first (file names and values can hold anything). */
function escaping(output: Output): Output {
  return { out: (line) => output.out(printable(line)), err: (line) => output.err(printable(line)) };
}

export function validateCommand(): Command {
  return new Command('validate')
    .description(
      'check virtfleet manifests (schema, cross-field rules, names) as the API server would, without a cluster',
    )
    .argument('<paths...>', 'manifest files, or directories searched recursively for *.yaml, *.yml and *.json')
    .addHelpText(
      'after',
      [
        '',
        'Prints one line per problem:  FILE:LINE: Kind/name: FIELD: MESSAGE',
        'Objects of other API groups (Secrets, Namespaces, ...) are accepted as they are.',
        'Exit status: 0 no problems, 1 problems found, 2 usage error.',
      ].join('\n'),
    )
    .action((paths: string[]) => {
      process.exitCode = runValidate(paths);
    });
}

/** Validates the files under `paths`, prints problems and a summary; returns the exit status. */
export function runValidate(paths: string[], rawOutput: Output = processOutput): number {
  const output = escaping(rawOutput);
  const files: string[] = [];
  for (const path of paths) {
    const found = manifestFiles(path);
    if (found === undefined) {
      output.err(`virtfleet validate: ${path}: no such file or directory`);
      return EXIT_USAGE;
    }
    files.push(...found);
  }
  if (files.length === 0) {
    output.err(`virtfleet validate: no *.yaml, *.yml or *.json files under ${paths.join(', ')}`);
    return EXIT_USAGE;
  }

  let objects = 0;
  let problems = 0;
  let filesWithProblems = 0;
  for (const file of files) {
    const report = validateFile(file);
    objects += report.objects;
    problems += report.problems.length;
    if (report.problems.length > 0) filesWithProblems += 1;
    for (const problem of sortByLine(report.problems)) output.out(formatProblem(problem));
  }

  const checked = `${count(files.length, 'file')}, ${count(objects, 'object')}`;
  output.err(
    problems === 0
      ? `virtfleet validate: ${checked}: no problems`
      : `virtfleet validate: ${checked}: ${count(problems, 'problem')} in ${count(filesWithProblems, 'file')}`,
  );
  return problems === 0 ? EXIT_OK : EXIT_PROBLEMS;
}

export function formatProblem(problem: FileProblem): string {
  const location = problem.line === undefined ? problem.file : `${problem.file}:${problem.line}`;
  return [location, problem.object, problem.path, problem.message]
    .filter((part) => part !== undefined && part !== '')
    .join(': ');
}

/** The manifest files a path stands for, sorted; undefined when it does not exist. */
function manifestFiles(path: string): string[] | undefined {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    return undefined;
  }
  if (!stats.isDirectory()) return [path];
  const files: string[] = [];
  for (const entry of readdirSync(path, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(manifestFiles(child) ?? []));
    else if (MANIFEST_FILE.test(entry.name)) files.push(child);
  }
  return files;
}

function sortByLine(problems: FileProblem[]): FileProblem[] {
  return [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
}

function count(n: number, noun: string): string {
  return `${n} ${noun}${n === 1 ? '' : 's'}`;
}
