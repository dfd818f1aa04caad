#!/usr/bin/env node
// nova-novncproxy's drop-in: `porthole novncproxy` with nova-novncproxy's options, nova.conf and exit statuses.
import { launch } from './launch.js';

await launch(['novncproxy', ...process.argv.slice(2)], { executable: 'nova-novncproxy' });
