#!/usr/bin/env node
/**
 * The `shardwork` executable.
 *
 * @module
 */

import { main } from './cli.js';

const code = await main(process.argv);
process.exitCode = code;
// Some clients keep retrying (and their sockets open) after a failed call; the
// result is final, so give output a moment to drain and then leave. The timer
// is unref'd: a clean run exits at once without waiting for it.
setTimeout(() => process.exit(code), 500).unref();
