/**
 * @module test/support/process
 * Runs a real command to completion for a test (the `porthole` CLI, `python3`) and hands back
 * its exit code and output whatever the code was, so a test can assert on a refusal as easily
 * as on a success. Every run has a timeout; the environment is the test's own minus any
 * `PORTHOLE_*` variable, so the caller decides all of the configuration.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('PORTHOLE_')) env[k] = v;
  return { ...env, ...extra };
}

export function run(command: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: opts.cwd ?? PROJECT_ROOT, env: opts.env ?? cleanEnv(), timeout: opts.timeoutMs ?? 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        // not an exit status: spawn failure or the timeout's kill
        reject(new Error(`${command} ${args.join(' ')} did not finish: ${err.message}\n${stderr}`));
        return;
      }
      resolve({ code: err ? (err.code as number) : 0, stdout, stderr });
    });
  });
}

/**
 * Flags for a test's `porthole serve`: the serial and SPICE listeners it runs beside noVNC on
 * loopback and free ports, never on Nova's 0.0.0.0:6083 and 0.0.0.0:6082 (another test or a
 * running Porthole may hold those, and a test binds loopback only).
 */
export const OTHER_CONSOLES_ON_LOOPBACK: readonly string[] = [
  '--serial_console-serialproxy_host', '127.0.0.1', '--serial_console-serialproxy_port', '0',
  '--spice-html5proxy_host', '127.0.0.1', '--spice-html5proxy_port', '0',
];

/** `node bin/porthole.js ...args` from the project root. */
export function porthole(args: readonly string[], env?: Record<string, string>): Promise<RunResult> {
  return run(process.execPath, ['bin/porthole.js', ...args], { env: cleanEnv(env) });
}
