/**
 * Fuzz of the console proxy (issue 11): deterministic hostile inputs from a seeded generator
 * (`test/support/fuzz-inputs.ts`): mutated upgrade requests, and WebSocket frames after a good
 * upgrade, around the browser's side of the RFB handshake; all with ONE valid multi-use token.
 * Asserted after the run: the gateway never threw out of a connection (it runs in this process;
 * `uncaughtException` and `unhandledRejection` are recorded), nothing leaked (descriptors,
 * connections to the backend, the backend's open connections, live and registered sessions back
 * at the baseline within the deadlines), a console opened before the run kept relaying during it
 * and after, a new one opens after, no log line holds the raw token, and resident memory after a
 * forced GC is back near its level after the first cases (issue 15, item 6). The proxy trusts
 * loopback as a balancer (`[porthole] trusted_proxies`), so the X-Forwarded-For the cases send
 * is read, not ignored.
 *
 * Bounded for `npm test` (PORTHOLE_FUZZ_INPUTS, default 20 000 inputs: a few seconds); `npm run
 * fuzz` runs this file with 10^6. PORTHOLE_FUZZ_SEED picks another sequence; a case is replayed
 * from its seed and index (`fuzzCase(caseRng(seed, i), ...)`).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { optionSpec } from '../../src/config/options.ts';
import { echoBackend, type TestBackend } from '../support/backends.ts';
import { caseRng, fuzzCase, type FramesCase, type RequestCase } from '../support/fuzz-inputs.ts';
import { eventually, startGateway, type TestGateway } from '../support/gateway.ts';
import { connectionsTo, leakMeter, liveSessions, openDescriptors, registeredSessions, settled, type CountingServer } from '../support/leak-meter.ts';
import { binaryFrame, closeFrame, RawClient } from '../support/raw-ws.ts';
import { goodConsole, scriptedRfbBackend } from '../support/storm.ts';
import { memoryFigure, residentAfterGc, RSS_TOLERANCE } from '../support/fuzz-runs.ts';

const INPUTS = Number(process.env.PORTHOLE_FUZZ_INPUTS ?? 20_000);
const SEED = Number(process.env.PORTHOLE_FUZZ_SEED ?? 0x11f022);
const CONCURRENCY = Number(process.env.PORTHOLE_FUZZ_CONCURRENCY ?? 48);
/** `[porthole] handshake_timeout` and `rfb_handshake_timeout`, seconds: incomplete requests end quickly. */
const DEADLINE_S = 1;
/** The two deadlines, the 2 s a proxy waits for a close frame's answer, and slack for a loaded machine. */
const SETTLE_MS = (2 * DEADLINE_S + 2 + 3) * 1000;
/** Longest a case waits for the proxy's answer: past the header deadline, a request is dropped anyway. */
const WAIT_MS = 1000;

const turn = () => new Promise<void>((r) => setImmediate(r));

async function runRequest(c: RequestCase, port: number): Promise<number | undefined> {
  const client = await RawClient.open(port);
  try {
    for (const [i, chunk] of c.chunks.entries()) {
      if (i > 0) await turn();
      client.write(chunk);
    }
    switch (c.after) {
      case 'drop':
        client.destroy();
        break;
      case 'half-close':
        client.socket.end();
        await client.until(() => client.ended, WAIT_MS);
        break;
      case 'wait':
        await client.until(() => client.ended || (client.status !== undefined && (client.status !== 101 || client.frames.length > 0)), WAIT_MS);
        break;
      case 'rfb':
        await client.until(() => client.ended || (client.status !== undefined && (client.status !== 101 || client.frames.length > 0)), WAIT_MS);
        if (client.status === 101 && !client.ended) {
          client.write(Buffer.concat([binaryFrame('RFB 003.008\n'), binaryFrame([1]), binaryFrame([1])]));
          await client.until(() => client.ended || client.frames.length >= 4, WAIT_MS);
          client.write(closeFrame());
          await client.until(() => client.ended, WAIT_MS);
        }
        break;
    }
    return client.status;
  } finally {
    client.destroy();
  }
}

async function runFrames(c: FramesCase, port: number): Promise<number | undefined> {
  const client = await RawClient.open(port);
  try {
    client.write(c.request);
    if (c.waitFor101) await client.until(() => client.ended || client.status !== undefined, WAIT_MS);
    for (const [i, w] of c.writes.entries()) {
      if (client.ended) break;
      client.write(w);
      if (i % 8 === 7) await turn();
    }
    switch (c.ending) {
      case 'close-frame':
        client.write(closeFrame());
        await client.until(() => client.ended, WAIT_MS);
        break;
      case 'half-close':
        client.socket.end();
        await client.until(() => client.ended, WAIT_MS);
        break;
      case 'linger':
        await client.until(() => client.ended, 50);
        break;
      case 'destroy':
        break;
    }
    return client.status;
  } finally {
    client.destroy();
  }
}

describe('proxy fuzz: upgrade requests and WebSocket frames (issue 11)', () => {
  let gw: TestGateway;
  let backend: CountingServer;
  let echo: TestBackend;
  const crashes: string[] = [];
  const onCrash = (err: unknown) => {
    crashes.push(String((err as Error)?.stack ?? err).split('\n').slice(0, 4).join(' | '));
  };

  before(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    backend = await scriptedRfbBackend({});
    echo = await echoBackend();
    gw = await startGateway({
      'porthole.handshake_timeout': String(DEADLINE_S),
      'porthole.rfb_handshake_timeout': String(DEADLINE_S),
      'console.allowed_origins': 'portal.example.com',
      'porthole.trusted_proxies': '127.0.0.1',
      // the fuzz makes thousands of failed lookups from one address on purpose; the budget of
      // failed lookups (issue 11, item 7) has its own tests, and would turn every later case into a 429
      ...(optionSpec('porthole', 'failed_lookup_budget') ? { 'porthole.failed_lookup_budget': '0' } : {}),
    });
  });
  after(async () => {
    await Promise.race([gw?.close(), new Promise((r) => setTimeout(r, 5000))]).catch(() => {});
    await backend?.close();
    await echo?.close();
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
  });

  it(`takes ${INPUTS} hostile inputs with one token: no crash, no leak, the good console relays, no token in the log`, async (t) => {
    const findings: string[] = [];
    const { token } = await gw.mint({ host: '127.0.0.1', port: backend.port });
    const goodToken = (await gw.mint({ host: '127.0.0.1', port: echo.port })).token;
    const wsUrl = (tk: string) => `ws://127.0.0.1:${gw.port}/websockify?token=${tk}`;
    const meter = leakMeter({
      descriptors: () => openDescriptors(),
      'connections to the backend': () => connectionsTo(backend.port),
      'backend open connections': backend.open,
      'live sessions': () => liveSessions(gw.gateway),
      'registry sessions': () => registeredSessions(gw.gateway),
    });
    const good = await goodConsole(wsUrl(goodToken));
    await eventually('the good console in the registry', async () => (await registeredSessions(gw.gateway)) >= 1);
    const baseline = await meter.read();

    // the log is searched as it grows and then let go, so a long run holds no more than a window of it
    const tokenLines: string[] = [];
    let logLines = 0;
    const scanLog = () => {
      for (const line of gw.rawLog) if (line.includes(token) && tokenLines.length < 5) tokenLines.push(line.trim().slice(0, 300));
      logLines += gw.rawLog.length;
      gw.rawLog.length = 0;
      gw.logs.length = 0;
    };

    const statuses = new Map<string, number>();
    let inputs = 0;
    let cases = 0;
    let requestCases = 0;
    let framesCases = 0;
    const started = Date.now();
    const echoing = good.keepEchoing(250);
    // resident memory is compared from the end of a warm-up (code compiled, pools at size), not from the start
    const warmUp = Math.min(2000, Math.floor(INPUTS / 10));
    let rssBefore: number | undefined;
    let warming: Promise<void> | undefined;
    // cases are drawn in order until the input count is reached; each runs on its own connection
    let errors = 0;
    const firstErrors: string[] = [];
    const worker = async () => {
      while (inputs < INPUTS) {
        const i = cases++;
        const c = fuzzCase(caseRng(SEED, i), { port: gw.port, token });
        let status: number | undefined;
        try {
          if (c.kind === 'request') {
            inputs += 1;
            requestCases++;
            status = await runRequest(c, gw.port);
          } else {
            inputs += 1 + c.frameCount;
            framesCases++;
            status = await runFrames(c, gw.port);
          }
        } catch (err) {
          errors++;
          if (firstErrors.length < 3) firstErrors.push(`case ${i}: ${(err as Error).message}`);
        }
        const key = `${c.kind} ${status ?? 'none'}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
        if (i % 500 === 0) scanLog();
        if (inputs >= warmUp && warming === undefined) warming = residentAfterGc().then((r) => void (rssBefore = r));
        if (i % 20_000 === 0 && i > 0) t.diagnostic(`${inputs} inputs, ${cases} cases, ${((Date.now() - started) / 1000).toFixed(0)} s`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (Date.now() - started) / 1000;
    for (const f of await echoing.stop()) findings.push(`echo through the good console during the fuzz: ${f}`);
    if (errors > 0) t.diagnostic(`${errors} cases failed on the client side (first: ${firstErrors.join('; ')})`);

    await good.echo().catch((err: Error) => findings.push(`echo through the good console after the fuzz: ${err.message}`));
    try {
      const fresh = await goodConsole(wsUrl(goodToken));
      await fresh.echo();
      fresh.close();
    } catch (err) {
      findings.push(`a new console after the fuzz: ${(err as Error).message}`);
    }
    await settled(meter, baseline, SETTLE_MS).catch((err: Error) => findings.push(`leak: ${err.message}`));
    await warming;
    const rssAfter = await residentAfterGc();
    t.diagnostic(memoryFigure(rssBefore ?? 0, rssAfter));
    if (rssBefore !== undefined && rssAfter - rssBefore > RSS_TOLERANCE) findings.push(`resident memory not back: ${memoryFigure(rssBefore, rssAfter)}`);
    good.close();
    await new Promise((res) => setTimeout(res, 100));
    scanLog();
    if (tokenLines.length > 0) findings.push(`the raw token is in the log, e.g.:\n    ${tokenLines.join('\n    ')}`);
    if (crashes.length > 0) findings.push(`${crashes.length} uncaught errors in the process, e.g.: ${crashes.slice(0, 3).join('\n    ')}`);

    t.diagnostic(`seed ${SEED}: ${inputs} inputs (${requestCases} upgrade requests, ${inputs - requestCases} frames and upgrades in ${framesCases} connections) in ${seconds.toFixed(1)} s, ${Math.round(inputs / seconds)} inputs/s; ${logLines} log lines`);
    t.diagnostic(`answers: ${[...statuses].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k}: ${n}`).join(', ')}`);
    // the fuzz must have reached the relay and the refusals both, or it tested less than it says
    assert.ok((statuses.get('frames 101') ?? 0) > framesCases / 2, `only ${statuses.get('frames 101') ?? 0} of ${framesCases} frame cases got their upgrade`);
    assert.ok([...statuses.keys()].some((k) => /^request [45]\d\d$/.test(k)), 'no upgrade request was refused: the mutations do not reach the proxy');
    assert.deepEqual(findings, [], `fuzz findings (seed ${SEED}):\n  ${findings.join('\n  ')}`);
  });
});
