import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../packages/core/src/config.js';
import { maskSecrets } from '../../packages/core/src/redact.js';

const secret = 's3cret-Pw';

/** Each URL form that carries a secret, and how it must be printed. */
const forms: [what: string, url: string, shown: string][] = [
  [
    'user and password',
    `postgres://freshet:${secret}@db.example:5432/freshet_api`,
    'postgres://freshet:***@db.example:5432/freshet_api',
  ],
  ['password only', `redis://:${secret}@127.0.0.1:6379`, 'redis://:***@127.0.0.1:6379'],
  [
    'TLS scheme',
    `rediss://default:${secret}@r.example:6380/0`,
    'rediss://default:***@r.example:6380/0',
  ],
  [
    'percent-encoded password',
    `https://elastic:${encodeURIComponent('p@ss/w?rd')}@es.example:9243`,
    'https://elastic:***@es.example:9243',
  ],
  [
    'unescaped @ in the password',
    `redis://:pa@ss${secret}@127.0.0.1:6379`,
    'redis://:***@127.0.0.1:6379',
  ],
  [
    'unescaped / in the password',
    `postgres://freshet:pa/ss${secret}@db:5432/api`,
    'postgres://freshet:***@db:5432/api',
  ],
  [
    'unescaped ? and # in the password',
    `postgres://freshet:p?a#ss${secret}@db:5432/api`,
    'postgres://freshet:***@db:5432/api',
  ],
  [
    'password= parameter',
    `redis://127.0.0.1:6379/0?password=${secret}`,
    'redis://127.0.0.1:6379/0?password=***',
  ],
  [
    'sslpassword= beside harmless parameters',
    `postgres://db:5432/api?sslmode=require&sslpassword=${secret}&application_name=x`,
    'postgres://db:5432/api?sslmode=require&sslpassword=***&application_name=x',
  ],
  [
    'token, key, secret, api_key and access_token parameters',
    `https://h.example/p?token=${secret}&key=${secret}&secret=${secret}&api_key=${secret}&access_token=${secret}&page=2`,
    'https://h.example/p?token=***&key=***&secret=***&api_key=***&access_token=***&page=2',
  ],
  [
    'a parameter name in another case or percent-encoded',
    `postgres://db/api?PassWord=${secret}&%70assword=${secret}`,
    'postgres://db/api?PassWord=***&%70assword=***',
  ],
  [
    'userinfo and a query password at once',
    `redis://u:${secret}@h:1/?password=${secret}#frag`,
    'redis://u:***@h:1/?password=***#frag',
  ],
  ['no scheme before //', `://freshet:${secret}@db.example`, '://freshet:***@db.example'],
];

void describe('maskSecrets', () => {
  for (const [what, url, shown] of forms) {
    void it(`masks ${what}`, () => {
      assert.equal(maskSecrets(url), shown);
      assert.ok(!maskSecrets(url).includes(secret));
    });
  }

  void it('masks every URL inside a text (an error message) and keeps the rest', () => {
    const text = `cannot reach Redis at redis://:${secret}@h:6379 (REDIS_URL): nope; also "postgres://u:${secret}@db/x?sslpassword=${secret}"`;
    assert.equal(
      maskSecrets(text),
      'cannot reach Redis at redis://:***@h:6379 (REDIS_URL): nope; also "postgres://u:***@db/x?sslpassword=***"',
    );
  });

  void it('masks each URL of a comma-separated list of nodes on its own', () => {
    assert.equal(
      maskSecrets(`http://elastic:${secret}@es1:9200,https://elastic:${secret}@es2:9243`),
      'http://elastic:***@es1:9200,https://elastic:***@es2:9243',
    );
    // A comma inside a password does not start another URL: the password is masked whole.
    assert.equal(maskSecrets(`http://elastic:a,${secret}@es1:9200`), 'http://elastic:***@es1:9200');
  });

  void it('leaves URLs without secrets as they are', () => {
    for (const url of [
      'redis://127.0.0.1:6379',
      'postgres://postgres@127.0.0.1:5432/x',
      'http://127.0.0.1:9200/_cluster/health?timeout=5s&level=indices',
      'postgres://db/api?sslmode=require&application_name=freshet',
      'plain text with no URL',
    ]) {
      assert.equal(maskSecrets(url), url);
    }
  });
});

void describe('the configuration prints no URL secret it rejects', () => {
  const problemOf = (key: string, value: string) => {
    try {
      loadConfig({ [key]: value });
    } catch (err) {
      assert.ok(err instanceof ConfigError);
      return err.problems.join('\n');
    }
    assert.fail(`${key}=${value} was accepted`);
  };

  void it('masks each URL form in a rejected value', () => {
    for (const [, url, shown] of forms) {
      // The wrong scheme for the setting: rejected, and printed masked.
      const problem = problemOf('CATALOG_DATABASE_URL', url.replace(/^[a-z]*:/, 'mysql:'));
      assert.ok(!problem.includes(secret), problem);
      assert.ok(problem.includes(shown.replace(/^[a-z]*:/, 'mysql:')), problem);
    }
  });

  void it('hides a value with credentials but no // whole', () => {
    const problem = problemOf('REDIS_URL', `:${secret}@127.0.0.1:6379`);
    assert.match(problem, /^REDIS_URL must be a URL like .*, got "<redacted: not a URL>"$/);
  });
});
