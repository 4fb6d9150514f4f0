import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { errors as esErrors } from '@elastic/elasticsearch';
import { isTransientError, retryTransient } from '@freshet/core';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isTransientError', () => {
  it('knows a server that is away or restarting', () => {
    for (const err of [
      withCode('ECONNREFUSED'),
      withCode('ECONNRESET'),
      withCode('57P01', 'terminating connection due to administrator command'),
      withCode('57P03', 'the database system is starting up'),
      withCode('08006'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      new Error('Connection is closed.'),
      new AggregateError([withCode('ECONNREFUSED')], 'connect failed'),
      new Error('wrapped', { cause: withCode('ECONNRESET') }),
      new esErrors.ConnectionError('socket hang up'),
    ]) {
      assert.equal(isTransientError(err), true, String(err.message));
    }
  });

  it('does not retry what a retry cannot fix', () => {
    for (const err of [
      withCode('23505', 'duplicate key value'),
      withCode('42P01', 'relation does not exist'),
      withCode('57014', 'canceling statement due to user request'),
      withCode('55P03', 'lock timeout'),
      new Error('verification failed'),
      undefined,
      'a string',
    ]) {
      assert.equal(isTransientError(err), false, String(err));
    }
  });
});

describe('retryTransient', () => {
  it('retries transient errors until the work succeeds', async () => {
    let calls = 0;
    const result = await retryTransient(
      () => {
        calls++;
        return calls < 3 ? Promise.reject(withCode('ECONNREFUSED')) : Promise.resolve('ok');
      },
      { budgetMs: 5000, initialDelayMs: 1 },
    );
    assert.equal(result, 'ok');
    assert.equal(calls, 3);
  });

  it('throws at once on another error, and after the budget on a transient one', async () => {
    let calls = 0;
    await assert.rejects(
      retryTransient(
        () => {
          calls++;
          return Promise.reject(withCode('23505'));
        },
        { budgetMs: 5000, initialDelayMs: 1 },
      ),
      /x/,
    );
    assert.equal(calls, 1);
    await assert.rejects(
      retryTransient(() => Promise.reject(withCode('ECONNREFUSED', 'refused')), {
        budgetMs: 20,
        initialDelayMs: 5,
      }),
      /refused/,
    );
  });

  it('stops waiting when its signal aborts, with the reason', async () => {
    const controller = new AbortController();
    const reason = new Error('deadline');
    const pending = retryTransient(() => Promise.reject(withCode('ECONNREFUSED')), {
      budgetMs: 60_000,
      initialDelayMs: 10_000,
      signal: controller.signal,
      onRetry: () => controller.abort(reason),
    });
    await assert.rejects(pending, (err) => err === reason);
  });
});
