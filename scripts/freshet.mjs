#!/usr/bin/env node
// The one Freshet CLI. There is no build step: tsx loads the TypeScript sources directly.
import { register } from 'tsx/esm/api';

register();
await import('../apps/producer/src/main.ts');
