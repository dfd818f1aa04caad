/**
 * @module test/support/nova
 * Debian's python3-nova as a test peer: one long-lived `test/support/nova_tokens.py` process
 * answering JSON commands with Nova's own code (schema migrations, `ConsoleAuthToken.authorize`
 * as nova-compute mints, `clean_console_auths_for_instance` as Nova revokes), and the nova.conf
 * it and Porthole read.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { cleanEnv, PROJECT_ROOT } from './process.ts';

const PYTHON = '/usr/bin/python3';

export class NovaPeer {
  private readonly proc: ChildProcess;
  private readonly answers: Array<(line: string) => void> = [];
  private stderr = '';

  constructor(novaConf: string) {
    if (!existsSync('/usr/lib/python3/dist-packages/nova')) throw new Error('Debian\'s python3-nova is needed (.ci/run installs it)');
    this.proc = spawn(PYTHON, [join(PROJECT_ROOT, 'test/support/nova_tokens.py'), novaConf], { stdio: ['pipe', 'pipe', 'pipe'], env: cleanEnv() });
    this.proc.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    createInterface({ input: this.proc.stdout! }).on('line', (line) => {
      if (line.startsWith('{')) this.answers.shift()?.(line);
    });
  }

  call(cmd: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`python3-nova did not answer ${cmd['op']} within 60 s: ${this.stderr}`)), 60_000);
      this.proc.once('exit', (code) => reject(new Error(`python3-nova exited (${code}): ${this.stderr}`)));
      this.answers.push((line) => {
        clearTimeout(timer);
        const out = JSON.parse(line) as Record<string, unknown>;
        if (out['error']) reject(new Error(`Nova: ${out['error']}`));
        else resolve(out);
      });
      this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  stop(): void {
    this.proc.stdin!.end();
    this.proc.kill();
  }
}

/** A minimal nova.conf for a cell database at `connection` (what both Nova's code and Porthole read). */
export function writeNovaConf(file: string, connection: string, extra: Record<string, Record<string, string>> = {}): void {
  const sections: Record<string, Record<string, string>> = {
    DEFAULT: { transport_url: 'rabbit://openstack:secret@controller', my_ip: '192.0.2.5' },
    api: { auth_strategy: 'keystone' },
    api_database: { connection: 'mysql+pymysql://nova:secret@controller/nova_api' },
    database: { connection },
  };
  for (const [s, opts] of Object.entries(extra)) sections[s] = { ...sections[s], ...opts };
  writeFileSync(file, Object.entries(sections).map(([s, opts]) => `[${s}]\n${Object.entries(opts).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`).join('\n'));
}
