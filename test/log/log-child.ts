/**
 * A process that logs as a daemon does (createLogger with the flags given as JSON in argv[2]),
 * one line per line read on standard input (`event n`), until standard input ends. It prints
 * `ready` on standard error once its logger is made, so the test knows when to signal it.
 */
import { createInterface } from 'node:readline';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/log.ts';
import { flags } from '../support/gateway.ts';

const log = createLogger(loadConfig({ flags: flags(JSON.parse(process.argv[2] ?? '{}') as Record<string, string>) }).config);
process.stderr.write('ready\n');
createInterface({ input: process.stdin }).on('line', (line) => log.info({ event: 'line' }, line));
