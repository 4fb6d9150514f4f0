export type { SeedReport } from './types.js';
export { maxSeed } from './random.js';
export {
  createRowGenerator,
  syntheticRates,
  type RowGenerator,
  type RowGeneratorOptions,
  type SyntheticRow,
} from './rows.js';
export { defaultSeed, seedSynthetic, type SeedSyntheticOptions } from './synthetic.js';
export { deletedEvery, sampleFiles, seedSample, type SeedSampleOptions } from './sample.js';
