import { ident, type Pool } from '@freshet/core';

/**
 * A prototype of a proposed core change, without touching core: JIT compilation switched off
 * for every new connection to the scratch API database (`ALTER DATABASE ... SET jit = off`),
 * as `SET LOCAL jit = off` in the chunk steps (or `-c jit=off` on the worker's pool) would.
 * Only the benchmark's own database; reset right after.
 */
export async function setScratchJit(admin: Pool, database: string, on: boolean): Promise<void> {
  await admin.query(
    on
      ? `ALTER DATABASE ${ident(database)} RESET jit`
      : `ALTER DATABASE ${ident(database)} SET jit = off`,
  );
}
