import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COMMANDS } from '../../src/cli/commands.ts';
import { main } from '../../src/cli/index.ts';
import { HELP_WIDTH } from '../../src/cli/help.ts';

/** Runs the CLI's main() in this process with stdout and stderr captured (help never opens a store). */
async function cli(argv: string[], executable?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((chunk: string) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    const code = await main(argv, executable ? { executable } : {});
    return { code, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

function assertNarrow(text: string, what: string): void {
  const long = text.split('\n').filter((l) => l.length > HELP_WIDTH);
  assert.deepEqual(long, [], `${what}: lines over ${HELP_WIDTH} characters`);
}

describe('help', () => {
  it('keeps every help text within 100 columns', async () => {
    const texts: [string, string][] = [];
    for (const argv of [['--help'], ['help'], ['help', 'options'], ['token', '--help'], ['server', '--help'], ['sessions', '--help']]) {
      texts.push([argv.join(' '), (await cli(argv)).stdout]);
    }
    for (const name of Object.keys(COMMANDS)) {
      for (const argv of [[...name.split(' '), '--help'], ['help', ...name.split(' ')], [...name.split(' '), '-h']]) {
        const r = await cli(argv);
        assert.equal(r.code, 0, `${argv.join(' ')}: ${r.stderr}`);
        texts.push([argv.join(' '), r.stdout]);
      }
    }
    for (const [what, text] of texts) {
      assert.ok(text.length > 100, `${what} printed no help`);
      assertNarrow(text, what);
    }
  });

  it('lists the commands, the drop-in executables and where the configuration is read', async () => {
    const r = await cli(['--help']);
    for (const name of Object.keys(COMMANDS)) assert.match(r.stdout, new RegExp(`^  ${name} `, 'm'), name);
    assert.match(r.stdout, /nova-novncproxy, nova-serialproxy and\s+nova-spicehtml5proxy/);
    assert.match(r.stdout, /\/etc\/porthole\/porthole\.conf/);
  });

  it('shows a command\'s own options with one line of help each', async () => {
    const r = await cli(['token', 'create', '--help']);
    assert.match(r.stdout, /^usage: porthole token create --instance-uuid UUID/);
    assert.match(r.stdout, /^ {2}--instance-uuid UUID +The server the console is of\.$/m);
    assert.match(r.stdout, /^ {2}--ttl SECONDS +Lifetime/m);
    assert.match(r.stdout, /porthole help options/);
  });

  it('shows a drop-in\'s Nova options under the executable\'s name', async () => {
    const r = await cli(['novncproxy', '--help'], 'nova-novncproxy');
    assert.match(r.stdout, /^usage: nova-novncproxy /);
    for (const form of ['--log-file PATH, --logfile PATH', '--debug, -d, --nodebug', '--vnc-novncproxy_port VNC_NOVNCPROXY_PORT', '--remote_debug-host']) {
      assert.ok(r.stdout.includes(form), form);
    }
    assert.match(r.stdout, /nova\.conf and nova-novncproxy\.conf/);
  });

  it('prints the version with status 0, also after a drop-in\'s other options', async () => {
    const version = (await cli(['--version'])).stdout;
    assert.match(version, /^porthole \d+\.\d+\.\d+\n$/);
    const r = await cli(['novncproxy', '--config-file=/etc/nova/nova.conf', '--version'], 'nova-novncproxy');
    assert.deepEqual(r, { code: 0, stdout: version, stderr: '' });
  });
});

describe('usage errors', () => {
  for (const [argv, message] of [
    [['tokn', 'create'], /^porthole: unknown command "tokn"; did you mean "token"\?/],
    [['token', 'crate'], /^porthole: unknown command "token crate"; did you mean "token create"\?/],
    [['serv'], /did you mean "serve"\?/],
    [['token', 'create', '--instance-uuuid', 'x'], /^porthole: unknown option --instance-uuuid; did you mean --instance-uuid\? \(porthole token create --help lists the options\)\n$/],
    [['server', 'list', '--databse-connection', 'sqlite:///x'], /did you mean --database-connection\?/],
    [['token', 'create', '--zzzzzzzz'], /^porthole: unknown option --zzzzzzzz \(porthole token create --help/],
  ] as const) {
    it(`exits 2 on ${argv.join(' ')}, naming the closest known name`, async () => {
      const r = await cli([...argv]);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, message);
      if (argv.some((a) => a.startsWith('--'))) assert.equal(r.stderr.split('\n').length, 2, 'one line, not a list of every option');
    });
  }

  it('names the executable in a drop-in\'s usage error', async () => {
    const r = await cli(['novncproxy', '--log_fiel', 'x'], 'nova-novncproxy');
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^nova-novncproxy: unknown option --log_fiel; did you mean --log-file\? \(nova-novncproxy --help/);
  });

  it('gives a group\'s usages within 100 columns', async () => {
    const r = await cli(['token']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /usage: porthole token create[\s\S]*porthole token show[\s\S]*porthole token revoke/);
    assertNarrow(r.stderr, 'porthole token');
  });
});
