// ServiceAccount tokens for tests, made as kubectl makes them: the SA, then the TokenRequest API
// (`kubectl create token`). A person logging in to the web console pastes such a token.
import { execFile } from 'node:child_process';

export function kubectl(binary: string, kubeconfig: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(binary, ['--kubeconfig', kubeconfig, ...args], (error, stdout, stderr) =>
      error ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr}`)) : resolve(stdout),
    ),
  );
}

/** Creates the ServiceAccount (and its namespace, if missing) and returns a token of it valid for an hour. */
export async function serviceAccountToken(
  run: (args: string[]) => Promise<string>,
  namespace: string,
  name: string,
): Promise<string> {
  await run(['create', 'namespace', namespace]).catch((error: Error) => {
    if (!/already exists/.test(error.message)) throw error;
  });
  await run(['create', 'serviceaccount', name, '-n', namespace]);
  return (await run(['create', 'token', name, '-n', namespace, '--duration=1h'])).trim();
}
