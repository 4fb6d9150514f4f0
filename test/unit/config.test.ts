import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../packages/core/src/config.js';
import { elasticsearchNodes } from '../../packages/core/src/elasticsearch.js';

/** The ConfigError that loading `env` throws. */
function configError(env: NodeJS.ProcessEnv): ConfigError {
  try {
    loadConfig(env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
    return err;
  }
  assert.fail(`loadConfig accepted ${JSON.stringify(env)}`);
}

/** Everything a ConfigError could show: its message, stack and problem list. */
const everythingShown = (err: ConfigError) =>
  [err.message, err.stack ?? '', String(err), ...err.problems].join('\n');

void describe('loadConfig', () => {
  void it('uses the defaults when nothing is set', () => {
    const config = loadConfig({});
    assert.equal(config.REDIS_URL, 'redis://127.0.0.1:6379');
    assert.equal(config.CATALOG_DATABASE_URL, 'postgres://postgres@127.0.0.1:5432/freshet_catalog');
    assert.equal(config.API_DATABASE_URL, 'postgres://postgres@127.0.0.1:5432/freshet_api');
    assert.equal(config.ELASTICSEARCH_URL, 'http://127.0.0.1:9200');
    assert.equal(config.FRESHET_QUEUE_PREFIX, 'freshet');
    assert.equal(config.LOG_LEVEL, 'info');
    assert.equal(config.WORKER_CONCURRENCY, 2);
    assert.equal(config.SHUTDOWN_TIMEOUT_MS, 30_000);
    assert.equal(config.DASHBOARD_PORT, 3000);
    assert.equal(config.ELASTICSEARCH_REPLICAS, 0);
    assert.equal(config.FRESHET_ALLOW_DROP, false);
    assert.equal(config.FRESHET_OPERATOR_TOKEN, undefined);
    assert.equal(config.CHUNK_SIZE_ROWS, undefined);
  });

  void it('MAX_REJECTED_RATE is a fraction, 0.01 by default', () => {
    assert.equal(loadConfig({}).MAX_REJECTED_RATE, 0.01);
    assert.equal(loadConfig({ MAX_REJECTED_RATE: '0' }).MAX_REJECTED_RATE, 0);
    assert.equal(loadConfig({ MAX_REJECTED_RATE: '0.25' }).MAX_REJECTED_RATE, 0.25);
    assert.equal(loadConfig({ MAX_REJECTED_RATE: '1' }).MAX_REJECTED_RATE, 1);
    for (const value of ['-0.1', '1.5', '5%', 'lots']) {
      assert.deepEqual(configError({ MAX_REJECTED_RATE: value }).problems, [
        `MAX_REJECTED_RATE must be a fraction like 0.01, got "${value}"`,
      ]);
    }
  });

  void it('the shrink guard: 10% in all, 50% of a source of at least 1000 rows, by default', () => {
    const config = loadConfig({});
    assert.equal(config.PROMOTE_MAX_DROP, 0.1);
    assert.equal(config.PROMOTE_MAX_SOURCE_DROP, 0.5);
    assert.equal(config.PROMOTE_SOURCE_MIN_ROWS, 1000);
    const set = loadConfig({
      PROMOTE_MAX_DROP: '0.2',
      PROMOTE_MAX_SOURCE_DROP: '1',
      PROMOTE_SOURCE_MIN_ROWS: '50',
    });
    assert.deepEqual(
      [set.PROMOTE_MAX_DROP, set.PROMOTE_MAX_SOURCE_DROP, set.PROMOTE_SOURCE_MIN_ROWS],
      [0.2, 1, 50],
    );
    assert.deepEqual(
      configError({
        PROMOTE_MAX_DROP: '10%',
        PROMOTE_MAX_SOURCE_DROP: '1.5',
        PROMOTE_SOURCE_MIN_ROWS: '0',
      }).problems,
      [
        'PROMOTE_MAX_DROP must be a fraction like 0.10, got "10%"',
        'PROMOTE_MAX_SOURCE_DROP must be a fraction like 0.5, got "1.5"',
        'PROMOTE_SOURCE_MIN_ROWS must be a positive integer, got "0"',
      ],
    );
  });

  void it('reads process.env when given no argument', () => {
    assert.deepEqual(loadConfig(), loadConfig(process.env));
  });

  void it('treats an empty variable as unset', () => {
    const config = loadConfig({ REDIS_URL: '', WORKER_CONCURRENCY: '' });
    assert.equal(config.REDIS_URL, 'redis://127.0.0.1:6379');
    assert.equal(config.WORKER_CONCURRENCY, 2);
  });

  void it('keeps only the settings it knows', () => {
    const config = loadConfig({ PATH: '/usr/bin', HOME: '/root', REDIS_URL: 'redis://r:6379' });
    assert.equal(config.REDIS_URL, 'redis://r:6379');
    assert.equal('PATH' in config, false);
    assert.equal('HOME' in config, false);
  });

  void it('names a malformed URL, the value seen and the expected form', () => {
    const err = configError({ ELASTICSEARCH_URL: 'not-a-url' });
    assert.deepEqual(err.problems, [
      'ELASTICSEARCH_URL must be a URL like http://127.0.0.1:9200, or several nodes separated by commas (http://es1:9200,http://es2:9200), got "not-a-url"',
    ]);
    assert.equal(err.name, 'ConfigError');
    assert.match(err.message, /^invalid configuration: ELASTICSEARCH_URL must be a URL like/);
  });

  void it('rejects a URL of the wrong scheme', () => {
    const cases = {
      REDIS_URL: ['http://127.0.0.1:6379', 'redis://127.0.0.1:6379 (rediss:// for TLS)'],
      CATALOG_DATABASE_URL: [
        'mysql://u@h:3306/catalog',
        'postgres://user@host:5432/freshet_catalog',
      ],
      API_DATABASE_URL: ['redis://127.0.0.1:6379', 'postgres://user@host:5432/freshet_api'],
      ELASTICSEARCH_URL: [
        'ftp://127.0.0.1:9200',
        'http://127.0.0.1:9200, or several nodes separated by commas (http://es1:9200,http://es2:9200)',
      ],
    };
    for (const [setting, [value, form]] of Object.entries(cases)) {
      const [problem] = configError({ [setting]: value }).problems;
      assert.equal(problem, `${setting} must be a URL like ${form}, got "${value}"`);
    }
  });

  void it('accepts the TLS and postgresql:// forms', () => {
    const config = loadConfig({
      REDIS_URL: 'rediss://:pw@redis.example:6380',
      CATALOG_DATABASE_URL: 'postgresql://u:p@db.example/catalog',
      ELASTICSEARCH_URL: 'https://es.example:9243',
    });
    assert.equal(config.REDIS_URL, 'rediss://:pw@redis.example:6380');
    assert.equal(config.CATALOG_DATABASE_URL, 'postgresql://u:p@db.example/catalog');
    assert.equal(config.ELASTICSEARCH_URL, 'https://es.example:9243');
  });

  void it('takes several Elasticsearch nodes separated by commas, each an http(s) URL', () => {
    const config = loadConfig({
      ELASTICSEARCH_URL: 'http://127.0.0.1:9201, https://u:p,w@es2.example:9243 ,http://es3:9200',
    });
    assert.deepEqual(elasticsearchNodes(config), [
      'http://127.0.0.1:9201',
      'https://u:p,w@es2.example:9243',
      'http://es3:9200',
    ]);
    assert.deepEqual(elasticsearchNodes(loadConfig({})), ['http://127.0.0.1:9200']);
    for (const bad of [
      'http://es1:9200,ftp://es2:9200',
      'http://es1:9200,,http://es2:9200',
      'http://es1:9200,',
      'http://es1:9200,es2:9200',
    ]) {
      const [problem] = configError({ ELASTICSEARCH_URL: bad }).problems;
      assert.match(problem ?? '', /^ELASTICSEARCH_URL must be a URL like .* separated by commas/);
    }
  });

  void it('masks the password of each node in a rejected list, and keeps each host', () => {
    const [problem] = configError({
      ELASTICSEARCH_URL: 'http://elastic:pw1@es1:9200,ftp://elastic:pw2@es2:9200',
    }).problems;
    assert.ok(problem?.endsWith('got "http://elastic:***@es1:9200,ftp://elastic:***@es2:9200"'));
  });

  void it('lists every bad variable in one error', () => {
    const err = configError({
      REDIS_URL: 'localhost',
      WORKER_CONCURRENCY: 'abc',
      LOG_LEVEL: 'loud',
      DASHBOARD_PORT: '70000',
      FRESHET_QUEUE_PREFIX: 'a:b',
      FRESHET_ALLOW_DROP: 'yes',
    });
    const named = err.problems.map((problem) => problem.split(' ')[0]).sort();
    assert.deepEqual(named, [
      'DASHBOARD_PORT',
      'FRESHET_ALLOW_DROP',
      'FRESHET_QUEUE_PREFIX',
      'LOG_LEVEL',
      'REDIS_URL',
      'WORKER_CONCURRENCY',
    ]);
    assert.ok(err.problems.includes('WORKER_CONCURRENCY must be a positive integer, got "abc"'));
    assert.ok(err.problems.includes('DASHBOARD_PORT must be a TCP port (1-65535), got "70000"'));
    for (const problem of err.problems) assert.ok(err.message.includes(problem), problem);
    assert.equal(err.message.split('\n').length, 1, 'the message is one line');
  });

  void it('never prints a secret it rejects', () => {
    for (const setting of ['FRESHET_OPERATOR_TOKEN', 'FRESHET_VIEWER_TOKEN']) {
      const err = configError({ [setting]: 'hunter2', WORKER_CONCURRENCY: 'abc' });
      const [problem] = err.problems.filter((p) => p.startsWith(setting));
      assert.equal(
        problem,
        `${setting} must be at least 24 characters with at least 6 different ones (make one with: openssl rand -hex 24), got <redacted>`,
      );
      assert.ok(!everythingShown(err).includes('hunter2'), `${setting} value was printed`);
    }
  });

  void it('wants dashboard tokens of 24 characters or more, not one character repeated', () => {
    const ok = 'c0ffee-5ca1ab1e-d15ea5e-42';
    assert.equal(loadConfig({ FRESHET_OPERATOR_TOKEN: ok }).FRESHET_OPERATOR_TOKEN, ok);
    for (const bad of ['0123456789abcdef0123456', 'a'.repeat(40), 'abababababababababababababab']) {
      const err = configError({ FRESHET_VIEWER_TOKEN: bad });
      assert.equal(err.problems.length, 1, err.message);
      assert.match(err.problems[0] ?? '', /^FRESHET_VIEWER_TOKEN must be at least 24 characters/);
      assert.ok(!everythingShown(err).includes(bad));
    }
  });

  void it('refuses the same token for operator and viewer, listed beside other problems', () => {
    const same = 'a-long-token-0123456789abcdef';
    const err = configError({
      FRESHET_OPERATOR_TOKEN: same,
      FRESHET_VIEWER_TOKEN: same,
      WORKER_CONCURRENCY: 'abc',
      DASHBOARD_LOGIN_FAILURES: '0',
    });
    assert.deepEqual(err.problems.map((p) => p.split(' ')[0]).sort(), [
      'DASHBOARD_LOGIN_FAILURES',
      'FRESHET_VIEWER_TOKEN',
      'WORKER_CONCURRENCY',
    ]);
    assert.ok(
      err.problems.includes(
        'FRESHET_VIEWER_TOKEN must differ from FRESHET_OPERATOR_TOKEN (the same token would sign the viewer in as operator), got <redacted>',
      ),
    );
    assert.ok(!everythingShown(err).includes(same), 'the token was printed');
    const alone = configError({ FRESHET_OPERATOR_TOKEN: same, FRESHET_VIEWER_TOKEN: same });
    assert.equal(alone.problems.length, 1);
  });

  void it('reads the login throttle settings', () => {
    const c = loadConfig({ DASHBOARD_LOGIN_FAILURES: '5', DASHBOARD_LOGIN_WINDOW_MS: '1500' });
    assert.deepEqual([c.DASHBOARD_LOGIN_FAILURES, c.DASHBOARD_LOGIN_WINDOW_MS], [5, 1500]);
    const d = loadConfig({});
    assert.deepEqual([d.DASHBOARD_LOGIN_FAILURES, d.DASHBOARD_LOGIN_WINDOW_MS], [20, 60_000]);
  });

  void it('never prints the password of a rejected URL', () => {
    // A database URL of the wrong scheme is still a URL with a password in it.
    const err = configError({ CATALOG_DATABASE_URL: 'mysql://freshet:hunter2@db:3306/catalog' });
    assert.match(err.message, /CATALOG_DATABASE_URL must be a URL like/);
    assert.ok(!everythingShown(err).includes('hunter2'), 'the URL password was printed');
  });

  void it('coerces numbers and booleans', () => {
    const config = loadConfig({
      WORKER_CONCURRENCY: '8',
      SHUTDOWN_TIMEOUT_MS: '45000',
      DASHBOARD_PORT: '8080',
      ELASTICSEARCH_REPLICAS: '0',
      CHUNK_SIZE_ROWS: '250000',
      FRESHET_ALLOW_DROP: 'true',
    });
    assert.equal(config.WORKER_CONCURRENCY, 8);
    assert.equal(config.SHUTDOWN_TIMEOUT_MS, 45_000);
    assert.equal(config.DASHBOARD_PORT, 8080);
    assert.equal(config.ELASTICSEARCH_REPLICAS, 0);
    assert.equal(config.CHUNK_SIZE_ROWS, 250_000);
    assert.equal(config.FRESHET_ALLOW_DROP, true);
    assert.equal(loadConfig({ FRESHET_ALLOW_DROP: '1' }).FRESHET_ALLOW_DROP, true);
    assert.equal(loadConfig({ FRESHET_ALLOW_DROP: '0' }).FRESHET_ALLOW_DROP, false);
  });

  void it('rejects numbers out of their range', () => {
    const bad = {
      WORKER_CONCURRENCY: ['0', '1.5', '-2'],
      SHUTDOWN_TIMEOUT_MS: ['soon'],
      ELASTICSEARCH_REPLICAS: ['-1'],
      DASHBOARD_PORT: ['65536', 'http'],
    };
    for (const [setting, values] of Object.entries(bad)) {
      for (const value of values) {
        const err = configError({ [setting]: value });
        assert.equal(err.problems.length, 1, `${setting}=${value}: ${err.message}`);
        assert.match(err.problems[0] ?? '', new RegExp(`^${setting} must be .*, got "${value}"$`));
      }
    }
  });

  void it('returns a frozen object', () => {
    const config = loadConfig({});
    assert.ok(Object.isFrozen(config));
    assert.throws(() => {
      (config as { REDIS_URL: string }).REDIS_URL = 'redis://elsewhere:6379';
    }, TypeError);
    assert.equal(config.REDIS_URL, 'redis://127.0.0.1:6379');
  });
});
