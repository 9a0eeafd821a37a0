#!/usr/bin/env node
// `npm run eval:ablation -- …`: equal-time training of several variants, each scored by `dnp eval`
// (server/src/eval/ablation.ts). Runs the TypeScript sources through tsx's loader, like bin/dnp.js.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../server/src/eval/ablation.ts');
process.exitCode = await main(process.argv.slice(2));
