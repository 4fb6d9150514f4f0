// The control side of Freshet, shared by the CLI and the dashboard: starting, retrying, pausing,
// cancelling, approving and rolling back runs; plans; schedules.
export * from './producer.js';
export * from './refresh.js';
export * from './control.js';
export * from './plan.js';
export * from './schedule/index.js';
export * from './run-view.js';
export * from './throughput.js';
