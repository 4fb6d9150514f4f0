// Alerts about runs: what they say (types, slack), when they are due (store), how a run becomes
// one (run-event) and how they are delivered (delivery).
export * from './types.js';
export * from './slack.js';
export * from './store.js';
export * from './run-event.js';
export * from './delivery.js';
