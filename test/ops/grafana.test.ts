/**
 * `deploy/grafana-dashboard.json` is an importable dashboard over the metrics a gateway really
 * exposes: every metric name its queries use is a family of a real `/metrics` (so a renamed
 * metric breaks this test, not an operator's dashboard), and it has what Grafana's import needs.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { PROJECT_ROOT } from '../support/process.ts';
import { startGateway, type TestGateway } from '../support/gateway.ts';
import { scrape } from './prom-text.ts';

interface Panel {
  title: string;
  type: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets: Array<{ expr: string }>;
}

describe('deploy/grafana-dashboard.json', () => {
  let gw: TestGateway;
  before(async () => {
    gw = await startGateway();
  });
  after(async () => {
    await gw?.close();
  });

  it('queries only metrics that /metrics has, and imports with a Prometheus data source', async () => {
    const dashboard = JSON.parse(readFileSync(join(PROJECT_ROOT, 'deploy', 'grafana-dashboard.json'), 'utf8')) as { __inputs: Array<{ pluginId: string }>; uid: string; panels: Panel[] };
    assert.deepEqual(dashboard.__inputs.map((i) => i.pluginId), ['prometheus']);
    assert.equal(dashboard.uid, 'porthole-overview');
    await scrape(gw.port); // Node's own figures start with the first scrape
    const { families } = await scrape(gw.port);
    const used = new Set<string>();
    for (const p of dashboard.panels) {
      assert.ok(p.targets.length > 0, p.title);
      for (const t of p.targets) for (const m of t.expr.matchAll(/\b((?:porthole|nodejs|process)_[a-z0-9_]+)\b/g)) used.add(m[1]!);
    }
    for (const name of used) {
      const family = families.has(name) ? name : name.replace(/_(bucket|sum|count)$/, '');
      assert.ok(families.has(family), `the dashboard queries ${name}, which /metrics does not have`);
    }
    for (const wanted of ['porthole_console_sessions', 'porthole_console_refusals_total', 'porthole_token_lookup_seconds_bucket', 'porthole_console_handshake_seconds_bucket', 'porthole_console_bytes_total', 'porthole_api_requests_total', 'nodejs_eventloop_lag_p99_seconds']) {
      assert.ok(used.has(wanted), `no panel shows ${wanted}`);
    }
    // panels do not overlap on Grafana's 24-column grid
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      assert.ok(p.gridPos.x + p.gridPos.w <= 24, p.title);
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
          assert.ok(!cells.has(`${x},${y}`), `${p.title} overlaps another panel`);
          cells.add(`${x},${y}`);
        }
      }
    }
  });
});
