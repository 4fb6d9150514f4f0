export * from './config.js';
export * from './cron.js';
export * from './daemon.js';
export * from './history.js';
export * from './scheduler.js';
export * from './slot-store.js';
export * from './slots.js';
export * from './table.js';
