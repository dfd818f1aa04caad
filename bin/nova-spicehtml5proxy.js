#!/usr/bin/env node
// nova-spicehtml5proxy's drop-in: `porthole spicehtml5proxy` with nova-spicehtml5proxy's options, nova.conf and exit statuses.
import { launch } from './launch.js';

await launch(['spicehtml5proxy', ...process.argv.slice(2)], { executable: 'nova-spicehtml5proxy' });
