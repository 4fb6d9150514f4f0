// The `freshet` CLI: its command tree, and how it follows a run to its end. What the CLI and the
// dashboard both do (runs, plans, schedules) is in @freshet/control.
export { buildCli } from './cli.js';
export { openRunWatch, waitForRun } from './progress.js';
