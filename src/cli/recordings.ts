/**
 * @module cli/recordings
 * `porthole recordings list|show|download|play|delete|index`: the same functions the recordings
 * API calls (`recordings/service.ts`) on Porthole's own store; `index` builds a recording's
 * keyframe sidecar now (`rfb/recording/player.ts`), which its first playback would otherwise do.
 * A download is written 0600 (a recording shows whatever the console showed).
 */
import { chmodSync, closeSync, copyFileSync, fchmodSync, openSync } from 'node:fs';
import { hostname } from 'node:os';
import { GatewayError } from '../errors.ts';
import { deleteRecording, getRecording, listRecordings, localRecordingFile, mintPlayback, recordingJson } from '../recordings/service.ts';
import type { RecordingRecord, RecordingStore } from '../store/recordings.ts';
import { onePositional, optionString, print, requireOption, UsageError, type CommandRun, type ParsedArgs } from './args.ts';
import { withAudit, withStores, type Stores } from './stores.ts';

function recordingsOf(stores: Stores): RecordingStore {
  if (!stores.recordings) throw new GatewayError('CONFIG_INVALID', 'recordings are listed in Porthole\'s own store: [database] connection is a Nova database and [porthole] connection is not set');
  return stores.recordings;
}

function line(r: RecordingRecord): string {
  const took = r.endedAt === null ? 'live' : `${Math.round((r.endedAt - r.startedAt) / 1000)} s`;
  return `${r.id}  ${new Date(r.startedAt).toISOString()}  ${took.padStart(7)}  ${String(r.sizeBytes).padStart(11)} B  ${r.serverName ?? r.serverId}  ${r.viewer ?? '-'}  ${r.proxyHost}`;
}

async function list(a: ParsedArgs, stores: Stores): Promise<number> {
  const sinceText = optionString(a, 'since');
  let since: number | undefined;
  if (sinceText !== undefined) {
    since = /^\d+$/.test(sinceText) ? Number(sinceText) * 1000 : Date.parse(sinceText);
    if (!Number.isFinite(since)) throw new UsageError(`--since ${sinceText}: expected ISO 8601 or epoch seconds`);
  }
  const limitText = optionString(a, 'limit');
  const limit = limitText === undefined ? undefined : Number(limitText);
  if (limit !== undefined && (!/^\d{1,4}$/.test(limitText!) || limit < 1 || limit > 1000)) throw new UsageError(`--limit ${limitText}: expected 1 to 1000`);
  const server = optionString(a, 'server');
  const project = optionString(a, 'project');
  const rows = await listRecordings(recordingsOf(stores), { ...(server ? { serverId: server.toLowerCase() } : {}), ...(project ? { projectId: project } : {}), ...(since !== undefined ? { since } : {}), ...(limit !== undefined ? { limit } : {}) });
  print(a, { recordings: rows.map(recordingJson) }, rows.length === 0 ? 'no recordings' : rows.map(line).join('\n'));
  return 0;
}

/** The code of `recordings ...`; their help is in commands.ts. */
export const recordingCommands: Record<string, CommandRun> = {
  'recordings list': (a, l) => withStores(l(), (s) => list(a, s)),
  'recordings show': (a, l) =>
    withStores(l(), async (s) => {
      const r = await getRecording(recordingsOf(s), onePositional(a, 'RECORDING_ID'));
      print(a, { recording: recordingJson(r) }, Object.entries(recordingJson(r)).map(([k, v]) => `${k.padEnd(12)} ${v ?? '-'}`).join('\n'));
      return 0;
    }),
  'recordings download': (a, l) => {
    const id = onePositional(a, 'RECORDING_ID');
    const out = requireOption(a, 'output');
    return withStores(l(), async (s) => {
      const f = await localRecordingFile(recordingsOf(s), id, hostname());
      const fd = openSync(out, 'w', 0o600);
      fchmodSync(fd, 0o600);
      closeSync(fd);
      copyFileSync(f.path, out);
      chmodSync(out, 0o600);
      print(a, { file: out, bytes: f.size }, `${out}: recording ${id}, ${f.size} bytes`);
      return 0;
    });
  },
  'recordings play': (a, l) => {
    const id = onePositional(a, 'RECORDING_ID');
    const loaded = l();
    return withStores(loaded, (s) =>
      withAudit(loaded, s, async (by) => {
        const { novnc } = await import('../consoles/novnc.ts');
        const link = await mintPlayback({ store: recordingsOf(s), tokens: s.tokens }, id, novnc.baseUrl(loaded), loaded.config.consoleauth.token_ttl, by);
        print(a, link, `url:        ${link.url}\nexpires at: ${link.expires_at}`);
        return 0;
      }),
    );
  },
  'recordings delete': (a, l) => {
    const id = onePositional(a, 'RECORDING_ID');
    const loaded = l();
    return withStores(loaded, (s) =>
      withAudit(loaded, s, async (by) => {
        await deleteRecording(recordingsOf(s), id, hostname(), by);
        print(a, { deleted: id }, `deleted recording ${id} (file, keyframes, listing)`);
        return 0;
      }),
    );
  },
  'recordings index': (a, l) => {
    const id = onePositional(a, 'RECORDING_ID');
    return withStores(l(), async (s) => {
      const f = await localRecordingFile(recordingsOf(s), id, hostname());
      const { RecordingPlayer } = await import('../rfb/recording/player.ts');
      const r = await RecordingPlayer.index(f.path);
      print(a, { recording: id, keyframes: r.keyframes, duration_ms: r.durationMs, file: r.keysPath }, `${r.keysPath}: ${r.keyframes} keyframe(s) over ${Math.round(r.durationMs / 1000)} s`);
      return 0;
    });
  },
};
