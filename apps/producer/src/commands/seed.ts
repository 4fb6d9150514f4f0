import type { Command } from 'commander';
import type { Config } from '@freshet/core';

/** `freshet seed`: load the Openverse sample or generate synthetic rows into the catalog. */
export function registerSeed(program: Command, _config: () => Config): void {
  program
    .command('seed')
    .description('load sample or synthetic rows into the upstream catalog')
    .action(() => {
      throw new Error('seed is being written');
    });
}
