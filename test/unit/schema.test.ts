// The store's migrations as a list: numbered in order, each once, never edited in place (a new
// change is a new migration at the end). Applying them is tested on the real PostgreSQL by every
// integration test (createTestEnv) and, for a database of an earlier version, in
// test/integration/schema.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { migrations } from '@freshet/core';

describe('the freshet schema migrations', () => {
  it('are numbered 1, 2, 3... in order, each with a name and SQL', () => {
    assert.deepEqual(
      migrations.map((m) => m.id),
      migrations.map((_, i) => i + 1),
    );
    for (const m of migrations) {
      assert.ok(m.name.length > 0);
      assert.match(m.sql, /\b(CREATE|ALTER)\b/);
    }
  });

  it('create every table of the store in one place', () => {
    const tables = migrations.flatMap((m) =>
      [...m.sql.matchAll(/CREATE TABLE IF NOT EXISTS (freshet\.\w+)/g)].map((x) => x[1]),
    );
    assert.deepEqual(tables.sort(), [
      'freshet.alerts',
      'freshet.attempts',
      'freshet.audit',
      'freshet.chunks',
      'freshet.logs',
      'freshet.promotions',
      'freshet.runs',
      'freshet.schedule_slots',
      'freshet.schedule_state',
      'freshet.stages',
    ]);
  });
});
