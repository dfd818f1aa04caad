#!/usr/bin/env node
// nova-serialproxy's drop-in: `porthole serialproxy` with nova-serialproxy's options, nova.conf and exit statuses.
import { launch } from './launch.js';

await launch(['serialproxy', ...process.argv.slice(2)], { executable: 'nova-serialproxy' });
