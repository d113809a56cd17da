#!/usr/bin/env node
// Thin shim so `npx atscale` runs the compiled CLI (build with `npm run build`).
import { main } from '../dist/src/cli/main.js';
main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
