// Entry point of the `freshet` CLI: the only place that exits the process.
import { maskSecrets } from '@freshet/core';
import { buildCli } from './cli.js';

const program = buildCli();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as Error & { exitCode?: number };
  const silent = (err as { silent?: boolean }).silent === true;
  if (!silent) process.stderr.write(`freshet: ${maskSecrets(e.message)}\n`);
  process.exitCode = typeof e.exitCode === 'number' ? e.exitCode : 1;
}
