#!/usr/bin/env node
// The `porthole` command (bin/launch.js: compiled dist/ when fresh, else the sources via tsx).
import { launch } from './launch.js';

await launch(process.argv.slice(2));
