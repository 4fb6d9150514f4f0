// Entry point of the `freshet` CLI: the only place that exits the process.
import { ConflictError, maskSecrets, NotFoundError } from '@freshet/core';
import { buildCli } from './cli.js';

const program = buildCli();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  const e = err as Error & { exitCode?: number };
  const silent = (err as { silent?: boolean }).silent === true;
  if (!silent) process.stderr.write(`freshet: ${maskSecrets(e.message)}\n`);
  // 3: the action does not apply to the run as it is now; 4: no such run (or media type).
  process.exitCode =
    typeof e.exitCode === 'number'
      ? e.exitCode
      : err instanceof ConflictError
        ? 3
        : err instanceof NotFoundError
          ? 4
          : 1;
}
