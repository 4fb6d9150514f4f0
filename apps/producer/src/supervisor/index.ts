export * from './supervisor.js';
export * from './spawn.js';
export * from './start.js';
export * from './options.js';
