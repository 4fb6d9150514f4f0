import { availableParallelism } from 'node:os';
import { InvalidArgumentError } from 'commander';

/** Parses a non-negative integer option, with a message naming the option. */
export function nonNegativeInt(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${value}'`);
    }
    return n;
  };
}

/** Default of `freshet workers --max`: one worker process per CPU. */
export const defaultMaxWorkers = (): number => availableParallelism();
