import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AlertKind, AlertPayload } from '@freshet/core';

/** One request the receiver got: its path, the status it answered and the parsed body. */
export interface Received {
  readonly path: string;
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: AlertPayload;
}

/**
 * A webhook receiver on 127.0.0.1: records every POST and answers 200, or the statuses scripted
 * for a run (`answer`). `delivered` waits for a 200-answered alert, without polling.
 */
export interface Receiver {
  readonly url: string;
  readonly all: Received[];
  answer(runId: string, statuses: number[]): void;
  delivered(runId: string, kind: AlertKind): Promise<Received>;
  count(runId: string, kind: AlertKind): number;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const all: Received[] = [];
  const scripted = new Map<string, number[]>();
  const waiters: { runId: string; kind: AlertKind; resolve: (r: Received) => void }[] = [];
  const ok = (r: Received, runId: string, kind: AlertKind) =>
    r.status === 200 && r.body.freshet.runId === runId && r.body.freshet.kind === kind;
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(parts).toString()) as AlertPayload;
      const status = scripted.get(body.freshet.runId)?.shift() ?? 200;
      const r: Received = {
        path: req.url ?? '',
        status,
        contentType: req.headers['content-type'],
        body,
      };
      all.push(r);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'nope');
      for (const w of waiters.filter((w) => ok(r, w.runId, w.kind))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(r);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    all,
    answer: (runId, statuses) => scripted.set(runId, statuses),
    delivered: (runId, kind) => {
      const seen = all.find((r) => ok(r, runId, kind));
      return seen
        ? Promise.resolve(seen)
        : new Promise((resolve) => waiters.push({ runId, kind, resolve }));
    },
    count: (runId, kind) => all.filter((r) => ok(r, runId, kind)).length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
