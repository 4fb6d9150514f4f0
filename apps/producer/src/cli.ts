import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { checkServices, loadConfig, repoRoot, UserError } from '@freshet/core';
import { registerSeed } from './commands/seed.js';

/** Parses a positive integer option, with a message naming the option. */
export function positiveInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n <= 0) {
      throw new InvalidArgumentError(`${name} must be a positive integer, got '${value}'`);
    }
    return n;
  };
}

/** Builds the `freshet` command tree; nothing runs until `parseAsync`. */
export function buildCli(): Command {
  const program = new Command('freshet')
    .description('Freshet: refresh an API database and search index from an upstream catalog')
    .showHelpAfterError()
    .exitOverride((err: CommanderError) => {
      // help and version are not failures; usage errors exit 2 with commander's message.
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') {
        throw Object.assign(new Error(''), { exitCode: 0, silent: true });
      }
      throw new UserError(err.message.replace(/^error: /, ''), 2);
    });

  program
    .command('services')
    .description('make sure Redis, PostgreSQL (catalog + API databases) and Elasticsearch are up')
    .argument('[action]', 'up | redis | postgres | elasticsearch | stop-elasticsearch', 'up')
    .action((action: string) => {
      const result = spawnSync('bash', [path.join(repoRoot, 'scripts/services.sh'), action], {
        stdio: 'inherit',
      });
      if (result.status !== 0) throw new UserError('services are not all up', result.status ?? 1);
    });

  program
    .command('check')
    .description('validate the configuration and check that every service answers')
    .action(async () => {
      const config = loadConfig();
      await checkServices(config);
      process.stdout.write('configuration valid; redis, catalog, api and elasticsearch answer\n');
    });

  registerSeed(program, () => loadConfig());
  return program;
}
