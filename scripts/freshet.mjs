#!/usr/bin/env node
// The one Freshet CLI. There is no build step: tsx (a runtime dependency) loads the TypeScript
// sources, so what is tested is what runs. On a node older than 22 it runs itself again on the
// node scripts/node.sh picks (Node 24 from the npm registry), forwarding signals and exit code.
const major = Number(process.versions.node.split('.')[0]);
if (major < 22) {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const { constants } = await import('node:os');
  if (process.env.FRESHET_NODE_REEXEC === '1') {
    process.stderr.write(
      `freshet: needs Node >= 22, still on ${process.version}; unset FRESHET_NODE or point it at Node 24\n`,
    );
    process.exit(1);
  }
  const wrapper = fileURLToPath(new URL('./node.sh', import.meta.url));
  const child = spawn('bash', [wrapper, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, FRESHET_NODE_REEXEC: '1' },
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../apps/producer/src/main.ts');
}
