import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UsageError } from '../../src/cli/args.ts';
import { COMMANDS } from '../../src/cli/commands.ts';
import { defaultConfig, novaConfig, PORTHOLE_CONFIG } from '../../src/cli/config-search.ts';
import { parseCommandLine } from '../../src/cli/parse.ts';
import { loadConfig } from '../../src/config/load.ts';
import { unhonouredOptions } from '../../src/config/unhonoured.ts';
import { tempDir } from '../support/gateway.ts';

interface HelpOption {
  /** every name on the line, without dashes: the first is the option's, the others its aliases */
  readonly names: string[];
  readonly short?: string;
  readonly takesValue: boolean;
}

/** The options a Nova daemon's real `--help` lists (captured from Debian's python3-nova 26.2.2). */
function helpOptions(daemon: string): HelpOption[] {
  const text = readFileSync(new URL(`../fixtures/nova-${daemon}-help.txt`, import.meta.url), 'utf8');
  const out: HelpOption[] = [];
  for (const line of text.split('\n')) {
    const m = /^ {2}(-[^ ].*?)(?: {2,}|$)/.exec(line);
    if (!m) continue;
    const forms = m[1]!.split(', ');
    const names = forms.filter((f) => f.startsWith('--')).map((f) => f.slice(2).split(' ')[0]!);
    const short = forms.find((f) => /^-[a-z]$/.test(f))?.slice(1);
    out.push({ names, short, takesValue: forms.some((f) => f.includes(' ')) });
  }
  return out;
}

/** What the fixture's option name sets in nova.conf, as oslo.config names its flags. */
function target(name: string): { section: string; option: string } {
  const group = /^(vnc|remote_debug|serial_console|spice)-(.+)$/.exec(name);
  if (group) return { section: group[1]!, option: group[2]! };
  return { section: 'DEFAULT', option: name.replaceAll('-', '_') };
}

/** A valid value for each option that takes one. */
function sample(section: string, option: string): string {
  if (option.endsWith('_port') || option === 'port') return '6099';
  if (option === 'auth_schemes') return 'vencrypt,none';
  if (option === 'syslog_log_facility') return 'LOG_LOCAL3';
  if (option === 'log_date_format') return '%H:%M:%S';
  return `/srv/${section}-${option}`;
}

const novnc = COMMANDS.novncproxy!;
const parse = (argv: string[], command = novnc, program = 'nova-novncproxy') => parseCommandLine(command, program, argv);
const configOf = (argv: string[]) => loadConfig({ flags: parse(argv).flags, env: {} });

describe('the Nova daemons\' options', () => {
  const listed = helpOptions('novncproxy');

  it('finds every option of the captured nova-novncproxy --help', () => {
    // the fixture is what the table below runs on: a parse that finds nothing tests nothing
    assert.equal(listed.length, 37);
    assert.ok(listed.some((o) => o.names.includes('log_config')));
  });

  for (const opt of listed) {
    const [name] = opt.names;
    if (!name || ['help', 'version', 'config-file', 'config-dir'].includes(name)) continue;
    const negated = name.startsWith('no') && listed.some((o) => o.names[0] === name.slice(2));
    const { section, option } = target(negated ? name.slice(2) : name);
    for (const form of opt.names) {
      if (opt.takesValue) {
        const value = sample(section, option);
        it(`sets [${section}] ${option} from --${form} VALUE and --${form}=VALUE`, () => {
          for (const argv of [[`--${form}`, value], [`--${form}=${value}`]]) {
            const got = (configOf(argv).config as Record<string, Record<string, unknown>>)[section]![option];
            const want = option === 'auth_schemes' ? value.split(',') : option.endsWith('port') && section === 'vnc' ? Number(value) : value;
            assert.deepEqual(got, want, argv.join(' '));
          }
        });
      } else {
        it(`sets [${section}] ${option} to ${!negated} from --${form}`, () => {
          // the negation is checked after the option is set, so a no-op would fail
          const argv = negated ? [`--${name.slice(2)}`, `--${form}`] : [`--${form}`];
          assert.equal((configOf(argv).config as Record<string, Record<string, unknown>>)[section]![option], !negated);
        });
      }
    }
    if (opt.short) {
      it(`sets [${section}] ${option} from -${opt.short} (and -${opt.short}${opt.short})`, () => {
        assert.equal(configOf([`-${opt.short}`]).config.DEFAULT.debug, true);
        assert.equal(configOf([`-${opt.short}${opt.short}`]).config.DEFAULT.debug, true);
      });
    }
  }

  for (const daemon of ['serialproxy', 'spicehtml5proxy'] as const) {
    it(`takes every option of nova-${daemon} --help`, () => {
      const argv: string[] = [];
      for (const o of helpOptions(daemon)) {
        const n = o.names[0]!;
        if (['help', 'version'].includes(n)) continue;
        argv.push(...(o.takesValue ? [`--${n}`, n.startsWith('config-') ? '/dev/null' : '6099'] : [`--${n}`]));
      }
      const line = parse(argv, COMMANDS[daemon]!, `nova-${daemon}`);
      assert.ok(line.flags.length > 15, 'the flags reach the configuration');
      // the console kind's own two options are config options now that the kind is served
      const [section, ...names] = { serialproxy: ['serial_console', 'serialproxy_host', 'serialproxy_port'], spicehtml5proxy: ['spice', 'html5proxy_host', 'html5proxy_port'] }[daemon];
      assert.deepEqual(line.flags.filter((f) => f.section === section).map((f) => f.name).sort(), names);
      assert.equal(line.options.size, 0, 'no option is kept aside');
    });
  }

  it('reads Debian\'s init script command line', () => {
    const line = parse(['--config-file=/etc/nova/nova.conf', '--log-file=/var/log/nova/nova-novncproxy.log']);
    assert.deepEqual(line.files, ['/etc/nova/nova.conf']);
    assert.equal(loadConfig({ flags: line.flags, env: {} }).config.DEFAULT.log_file, '/var/log/nova/nova-novncproxy.log');
  });

  it('takes an unambiguous prefix of an option, as argparse does', () => {
    assert.equal(configOf(['--log-f', '/x.log']).config.DEFAULT.log_file, '/x.log');
    assert.equal(configOf(['--vnc-novncproxy_po=6099']).config.vnc.novncproxy_port, 6099);
  });

  it('refuses an ambiguous prefix naming the candidates', () => {
    assert.throws(() => parse(['--log-d', 'x']), (e: Error) => e instanceof UsageError && /ambiguous option --log-d: could be --log-date-format, --log-dir/.test(e.message));
  });

  it('refuses a typo with the closest option', () => {
    assert.throws(() => parse(['--vnc-novncproxy_prot', '6080']), (e: Error) => e instanceof UsageError && /unknown option --vnc-novncproxy_prot; did you mean --vnc-novncproxy_port\?/.test(e.message));
    assert.throws(() => parse(['--log-fiel', 'x']), /did you mean --log-file\?/);
    assert.throws(() => parse(['--nodeamon']), /did you mean --nodaemon\?/);
    assert.throws(() => parse(['-x']), /unknown option -x/);
    assert.throws(() => parse(['positional']), /unexpected argument positional/, 'a daemon takes no positional arguments');
  });

  it('says which option lacks its value', () => {
    assert.throws(() => parse(['--log-file']), /--log-file needs a value/);
    assert.throws(() => parse(['--log-file', '--debug']), /--log-file needs a value/);
  });
});

describe('options Porthole accepts but cannot honour', () => {
  it('gives one line each, naming the flag that set it', () => {
    const loaded = configOf(['--daemon', '--record', '/tmp/frames', '--source_is_ipv6', '--log-config', '/etc/nova/logging.conf', '--remote_debug-host', '10.0.0.1', '--remote_debug-port', '5678']);
    const lines = unhonouredOptions(loaded);
    // --record (websockify's flag of [DEFAULT] record) is honoured: sessions are recorded under that prefix
    assert.equal(lines.length, 5, lines.join('\n'));
    assert.ok(!lines.some((l) => l.includes('record')), lines.join('\n'));
    assert.equal(loaded.config.DEFAULT.record, '/tmp/frames');
    assert.match(lines[0]!, /^flag --daemon: \[DEFAULT\] daemon = true is accepted but not honoured: Porthole always runs in the foreground/);
    assert.match(lines[2]!, /^flag --log-config: \[DEFAULT\] log_config_append = \/etc\/nova\/logging.conf is accepted but not honoured/);
  });

  it('names the nova.conf line that set it', () => {
    const dir = tempDir('porthole-unhonoured-');
    try {
      const conf = join(dir, 'nova.conf');
      writeFileSync(conf, '[DEFAULT]\ndebug = true\ndaemon = true\n[remote_debug]\nport = 5678\n');
      const lines = unhonouredOptions(loadConfig({ files: [conf], env: {} }));
      assert.deepEqual(lines.map((l) => l.split(' is ')[0]), [`${conf}:3: [DEFAULT] daemon = true`, `${conf}:5: [remote_debug] port = 5678`]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says nothing when they ask for nothing Porthole does not do', () => {
    assert.deepEqual(unhonouredOptions(configOf(['--nodaemon', '--nosource_is_ipv6', '--debug', '--use-json'])), []);
  });
});

describe('the default configuration', () => {
  it('finds nova.conf and nova-novncproxy.conf as oslo.config does, the home directory first', () => {
    const home = tempDir('porthole-home-');
    try {
      mkdirSync(join(home, '.nova', 'nova.conf.d'), { recursive: true });
      writeFileSync(join(home, '.nova', 'nova.conf'), '[DEFAULT]\n');
      writeFileSync(join(home, 'nova-novncproxy.conf'), '[DEFAULT]\n');
      const found = defaultConfig(novaConfig('nova-novncproxy'), home);
      assert.equal(found.files[0], join(home, '.nova', 'nova.conf'));
      assert.ok(found.files.includes(join(home, 'nova-novncproxy.conf')));
      assert.equal(found.dirs[0], join(home, '.nova', 'nova.conf.d'));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('never looks in a home directory for porthole\'s own commands', () => {
    const home = tempDir('porthole-home-');
    try {
      writeFileSync(join(home, 'porthole.conf'), '[DEFAULT]\n');
      mkdirSync(join(home, '.porthole'));
      writeFileSync(join(home, '.porthole', 'porthole.conf'), '[DEFAULT]\n');
      const found = defaultConfig(PORTHOLE_CONFIG, home);
      assert.ok(found.files.every((f) => f.startsWith('/etc/porthole/')), found.files.join(', '));
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('is the same search for every porthole command but the Nova drop-ins', () => {
    for (const [name, command] of Object.entries(COMMANDS)) {
      if (command.nova) assert.equal(command.config.project, 'nova', name);
      else assert.equal(command.config, PORTHOLE_CONFIG, name);
    }
  });
});
