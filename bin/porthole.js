#!/usr/bin/env node
// Entry point of the `porthole` command: loads the TypeScript sources through tsx's loader, so
// `npx porthole` works right after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
