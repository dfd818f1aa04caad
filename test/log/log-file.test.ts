/**
 * log_file and log_dir in a real process (test/log/log-child.ts, a logger made as a daemon makes
 * it): appended, created 0640, reopened on SIGHUP after logrotate's move and, with
 * watch_log_file, after a move without a signal; a file that cannot be opened gives one warning
 * and standard error, and the process lives on. Then `porthole serve` itself: its text lines on
 * standard output, and its log file across a move and SIGHUP.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { eventually } from '../support/gateway.ts';
import { cleanEnv, PROJECT_ROOT } from '../support/process.ts';
import { OSLO_LINE } from './support.ts';

interface Child {
  readonly proc: ChildProcess;
  stderr(): string;
  line(text: string): void;
  stop(): Promise<void>;
}

async function child(settings: Record<string, string>): Promise<Child> {
  const proc = spawn(process.execPath, ['--import', 'tsx', join(PROJECT_ROOT, 'test/log/log-child.ts'), JSON.stringify(settings)], { cwd: PROJECT_ROOT, env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  proc.stdout!.resume();
  await eventually('the child\'s logger', () => err.includes('ready\n') || proc.exitCode !== null, 20_000);
  assert.equal(proc.exitCode, null, err);
  return {
    proc,
    stderr: () => err,
    line: (text) => void proc.stdin!.write(`${text}\n`),
    stop: async () => {
      if (proc.exitCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.stdin!.end();
      await exited;
    },
  };
}

const read = (path: string) => {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
};

describe('log file', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'porthole-logfile-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('appends oslo lines to log_dir/log_file, creates it 0640, and reopens it on SIGHUP after logrotate\'s move', async () => {
    const path = join(dir, 'nova-novncproxy.log');
    const c = await child({ 'DEFAULT.log_dir': dir, 'DEFAULT.log_file': 'nova-novncproxy.log' });
    try {
      c.line('before rotation');
      await eventually('the first line', () => read(path).includes('before rotation'));
      assert.equal(statSync(path).mode & 0o777, 0o640);
      const first = read(path).trimEnd().split('\n');
      assert.equal(first.length, 1);
      const m = OSLO_LINE.exec(first[0]!);
      assert.ok(m, first[0]);
      assert.equal(m[3], String(c.proc.pid));
      assert.equal(m[6], 'before rotation event=line');

      renameSync(path, `${path}.1`);
      c.line('after the move');
      await eventually('the line in the moved file', () => read(`${path}.1`).includes('after the move'));
      c.proc.kill('SIGHUP');
      // SIGHUP is handled between two lines from standard input: the next line is after it
      await new Promise((r) => setTimeout(r, 200));
      c.line('after SIGHUP');
      await eventually('the new file', () => read(path).includes('after SIGHUP'), 5000);
      assert.equal(read(`${path}.1`).includes('after SIGHUP'), false);
      assert.equal(c.proc.exitCode, null, 'SIGHUP did not end the process');
    } finally {
      await c.stop();
    }
  });

  it('appends to an existing file, and with watch_log_file reopens a moved file without a signal', async () => {
    const path = join(dir, 'watched.log');
    writeFileSync(path, 'an older line\n');
    const c = await child({ 'DEFAULT.log_file': path, 'DEFAULT.watch_log_file': 'true' });
    try {
      c.line('one');
      await eventually('line one', () => read(path).includes('one event=line'));
      assert.match(read(path), /^an older line\n/);
      renameSync(path, `${path}.1`);
      c.line('two');
      await eventually('line two in a new file', () => read(path).includes('two event=line'));
      assert.equal(read(`${path}.1`).includes('two'), false);
      unlinkSync(path);
      c.line('three');
      await eventually('line three in a new file', () => read(path).includes('three event=line'));
    } finally {
      await c.stop();
    }
  });

  it('a log file that cannot be opened: one warning on standard error, lines there, the process lives', async () => {
    const path = join(dir, 'no-such-dir', 'x.log');
    const c = await child({ 'DEFAULT.log_file': path });
    try {
      c.line('still logging');
      await eventually('the line on standard error', () => c.stderr().includes('still logging'));
      const lines = c.stderr().split('\n').filter((l) => l && l !== 'ready');
      assert.equal(lines.filter((l) => /cannot write the log/.test(l)).length, 1, c.stderr());
      assert.match(lines[0]!, new RegExp(`WARNING porthole\\.log \\[-\\] cannot write the log to the log file ${path}: ENOENT.*; logging to standard error instead`));
      assert.ok(lines.some((l) => OSLO_LINE.test(l) && l.endsWith('still logging event=line')), c.stderr());
      assert.equal(c.proc.exitCode, null);
    } finally {
      await c.stop();
    }
  });

  it('a directory in place of the log file after a SIGHUP: one warning, standard error, alive', async () => {
    const path = join(dir, 'becomes-dir.log');
    const c = await child({ 'DEFAULT.log_file': path });
    try {
      c.line('in the file');
      await eventually('the line', () => read(path).includes('in the file'));
      renameSync(path, `${path}.1`);
      mkdirSync(path);
      c.proc.kill('SIGHUP');
      await eventually('the warning', () => /cannot write the log to the log file/.test(c.stderr()));
      c.line('after');
      await eventually('the line on standard error', () => c.stderr().includes('after event=line'));
      assert.equal(c.proc.exitCode, null);
    } finally {
      await c.stop();
    }
  });
});
