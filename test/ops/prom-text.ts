/**
 * @module test/ops/prom-text
 * A strict reader of Prometheus's text exposition format 0.0.4 (what `/metrics` answers), as a
 * scraper reads it: `# HELP` and `# TYPE` lines, then each family's samples, `name{l="v",...}
 * value`, label values with the format's escapes (`\\`, `\"`, `\n`), values as Prometheus
 * reads them. Anything the format does not allow fails the test: a sample before its TYPE or of
 * another family, a bad name, an unterminated label value, a value that is no float, the same
 * series twice.
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Family {
  readonly name: string;
  readonly type: string;
  readonly help: string;
  readonly samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheusText(text: string): Map<string, Family> {
  const families = new Map<string, Family>();
  const seen = new Set<string>();
  let current: Family | undefined;
  const lines = text.split('\n');
  assert.equal(lines.at(-1), '', 'the text ends with a newline');
  for (const [i, line] of lines.entries()) {
    const where = `line ${i + 1}: ${JSON.stringify(line)}`;
    if (line === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
      if (!m) continue; // a plain comment
      const [, what, name, rest] = m as unknown as [string, string, string, string];
      assert.match(name, NAME, where);
      let f = families.get(name);
      if (!f) {
        f = { name, type: 'untyped', help: '', samples: [] };
        families.set(name, f);
      }
      if (what === 'TYPE') {
        assert.ok(TYPES.has(rest), `${where}: unknown type`);
        assert.equal(f.samples.length, 0, `${where}: TYPE after samples`);
        (f as { type: string }).type = rest;
      } else (f as { help: string }).help = rest.replace(/\\n/g, '\n').replace(/\\\\/g, '\\');
      current = f;
      continue;
    }
    const sample = parseSample(line, where);
    assert.ok(current, `${where}: sample before any TYPE`);
    const base = current.type === 'histogram' ? sample.name.replace(/_(bucket|sum|count)$/, '') : current.type === 'summary' ? sample.name.replace(/_(sum|count)$/, '') : sample.name;
    assert.equal(base, current.name, `${where}: sample of another family than ${current.name}`);
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`;
    assert.ok(!seen.has(key), `${where}: the same series twice`);
    seen.add(key);
    current.samples.push(sample);
  }
  return families;
}

function parseSample(line: string, where: string): Sample {
  let i = 0;
  while (i < line.length && line[i] !== '{' && line[i] !== ' ') i++;
  const name = line.slice(0, i);
  assert.match(name, NAME, where);
  const labels: Record<string, string> = {};
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const eq = line.indexOf('=', i);
      assert.ok(eq > i, `${where}: label without =`);
      const label = line.slice(i, eq);
      assert.match(label, LABEL, where);
      assert.equal(line[eq + 1], '"', `${where}: label value not quoted`);
      let j = eq + 2;
      let value = '';
      for (;;) {
        assert.ok(j < line.length, `${where}: unterminated label value`);
        const c = line[j]!;
        if (c === '"') break;
        if (c === '\\') {
          const e = line[j + 1];
          assert.ok(e === '\\' || e === '"' || e === 'n', `${where}: bad escape`);
          value += e === 'n' ? '\n' : e;
          j += 2;
        } else {
          value += c;
          j++;
        }
      }
      assert.ok(!(label in labels), `${where}: label ${label} twice`);
      labels[label] = value;
      i = j + 1;
      if (line[i] === ',') i++;
    }
    i++;
  }
  assert.equal(line[i], ' ', `${where}: no space before the value`);
  const [raw, timestamp, ...extra] = line.slice(i + 1).split(' ');
  assert.equal(extra.length, 0, where);
  if (timestamp !== undefined) assert.match(timestamp, /^-?\d+$/, where);
  // Prometheus reads values with Go's strconv.ParseFloat, which takes NaN and Inf in any case
  // (prom-client writes an empty histogram's mean as `Nan`)
  const special = /^([+-]?)(inf|infinity)$/i.exec(raw ?? '');
  const value = special ? (special[1] === '-' ? -Infinity : Infinity) : /^nan$/i.test(raw ?? '') ? NaN : Number(raw);
  assert.ok(raw !== '' && (!Number.isNaN(value) || /^nan$/i.test(raw!)), `${where}: value ${raw} is no float`);
  return { name, labels, value };
}

/** The value of the one sample named `name` whose labels include `labels`; 0 when there is none. */
export function value(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const found = samples(families, name, labels);
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value ?? 0;
}

/** The samples named `name` whose labels include `labels`. */
export function samples(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): Sample[] {
  const out: Sample[] = [];
  for (const f of families.values()) for (const s of f.samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) out.push(s);
  return out;
}

/** The sum of the samples named `name` whose labels include `labels`. */
export function total(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  return samples(families, name, labels).reduce((a, s) => a + s.value, 0);
}

export interface Scrape {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

/** One GET with node:http (no keep-alive), as a scraper or a probe makes it. */
export function get(port: number, path: string, method = 'GET'): Promise<Scrape> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), text: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${path} within 10 s`)));
    req.on('error', reject);
    req.end();
  });
}

/** `/metrics` on `port`, checked (200, Prometheus's content type) and parsed. */
export async function scrape(port: number): Promise<{ families: Map<string, Family>; text: string }> {
  const r = await get(port, '/metrics');
  assert.equal(r.status, 200, r.text);
  assert.match(r.contentType, /^text\/plain; version=0\.0\.4; charset=utf-8$/);
  return { families: parsePrometheusText(r.text), text: r.text };
}
