#!/usr/bin/env node
// The `dnp` command. Runs the TypeScript sources directly through tsx's loader (no build step to forget).
import { register } from 'tsx/esm/api';

register();
await import('../server/src/cli/main.ts');
