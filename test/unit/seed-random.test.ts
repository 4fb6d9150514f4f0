// Pure parts of `freshet seed`: the seeded PRNG, row generation and COPY text escaping (no DB).
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../../packages/core/src/config.js';
import {
  getMedia,
  loadMediaCatalog,
  parseMediaDefinition,
  type MediaDefinition,
} from '../../packages/core/src/media.js';
import {
  encodeCopyTextRow,
  escapeCopyTextValue,
} from '../../packages/core/src/refresh/copy-text.js';
import { arrayLiteral } from '../../packages/core/src/seed/copy-text.js';
import { createRandom, hash32, Weighted } from '../../packages/core/src/seed/random.js';
import {
  createRowGenerator,
  syntheticRates,
  type SyntheticRow,
} from '../../packages/core/src/seed/rows.js';
import { isoTimestamp } from '../../packages/core/src/seed/time.js';

const media = loadMediaCatalog(path.join(repoRoot, 'packages/core/media/media.json'));
const image = getMedia(media, 'image');
const audio = getMedia(media, 'audio');

function draws(seed: number, stream: number, count: number): number[] {
  const r = createRandom(seed, stream);
  return Array.from({ length: count }, () => r.uint32());
}

function rows(def: MediaDefinition, seed: number, count: number, start = 0): SyntheticRow[] {
  const generator = createRowGenerator(def, { seed });
  return Array.from({ length: count }, (_, i) => generator.row(start + i));
}

function column(def: MediaDefinition, name: string): number {
  const i = def.columns.findIndex((c) => c.name === name);
  assert.ok(i >= 0, `column ${name} exists`);
  return i;
}

describe('seeded PRNG', () => {
  it('gives the same sequence for the same seed and stream', () => {
    assert.deepEqual(draws(42, 0, 1000), draws(42, 0, 1000));
    assert.deepEqual(draws(0, 7, 100), draws(0, 7, 100));
  });

  it('gives different sequences for another seed or another stream', () => {
    assert.notDeepEqual(draws(42, 0, 20), draws(43, 0, 20));
    assert.notDeepEqual(draws(42, 0, 20), draws(42, 1, 20));
    // Seed and stream are not interchangeable.
    assert.notDeepEqual(draws(1, 2, 20), draws(2, 1, 20));
  });

  it('draws floats in [0, 1) and integers within inclusive bounds, roughly uniformly', () => {
    const r = createRandom(7);
    const buckets = new Array<number>(10).fill(0);
    const seen = new Set<number>();
    for (let i = 0; i < 100_000; i++) {
      const x = r.next();
      assert.ok(x >= 0 && x < 1);
      buckets[Math.floor(x * 10)]! += 1;
      const n = r.int(3, 6);
      assert.ok(n >= 3 && n <= 6 && Number.isInteger(n));
      seen.add(n);
    }
    assert.deepEqual([...seen].sort(), [3, 4, 5, 6]);
    for (const b of buckets) assert.ok(b > 9_000 && b < 11_000, `bucket ${b}`);
  });

  it('makes version-4 UUIDs', () => {
    const r = createRandom(1);
    const ids = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const id = r.uuid();
      assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      ids.add(id);
    }
    assert.equal(ids.size, 10_000);
  });

  it('hash32 is a bijection (no collisions over a range)', () => {
    const out = new Set<number>();
    for (let i = 0; i < 200_000; i++) out.add(hash32(i));
    assert.equal(out.size, 200_000);
  });

  it('Weighted draws follow the weights', () => {
    const w = new Weighted([
      ['a', 3],
      ['b', 1],
    ] as const);
    const r = createRandom(3);
    let a = 0;
    for (let i = 0; i < 40_000; i++) if (w.draw(r) === 'a') a++;
    assert.ok(a > 29_000 && a < 31_000, `a drawn ${a} times`);
  });
});

describe('isoTimestamp', () => {
  it('matches Date#toISOString', () => {
    const r = createRandom(9);
    for (let i = 0; i < 20_000; i++) {
      const ms = Math.floor(r.next() * Date.UTC(2100, 0, 1));
      assert.equal(isoTimestamp(ms), new Date(ms).toISOString());
    }
    assert.equal(isoTimestamp(0), '1970-01-01T00:00:00.000Z');
    assert.equal(isoTimestamp(-1), new Date(-1).toISOString());
  });
});

describe('COPY text escaping', () => {
  it('escapes backslash, tab, newline and carriage return', () => {
    assert.equal(escapeCopyTextValue('plain text'), 'plain text');
    assert.equal(escapeCopyTextValue('a\tb'), 'a\\tb');
    assert.equal(escapeCopyTextValue('a\nb\r\n'), 'a\\nb\\r\\n');
    assert.equal(escapeCopyTextValue('C:\\dir\\n'), 'C:\\\\dir\\\\n');
    assert.equal(escapeCopyTextValue('{"d": "x\\ny"}'), '{"d": "x\\\\ny"}');
  });

  it('joins a row with tabs, spells NULL as \\N and ends with one newline', () => {
    assert.equal(encodeCopyTextRow(['a', null, 'b\tc', '']), 'a\t\\N\tb\\tc\t\n');
  });

  it('quotes array elements that need it', () => {
    assert.equal(arrayLiteral(['rock', 'pop']), '{rock,pop}');
    assert.equal(
      arrayLiteral(['hip hop', 'a,b', 'say "hi"', 'back\\slash', '', 'NULL']),
      '{"hip hop","a,b","say \\"hi\\"","back\\\\slash","","NULL"}',
    );
    assert.equal(arrayLiteral([]), '{}');
  });

  it('generated lines have one field per column and no raw newline inside', () => {
    const generator = createRowGenerator(image, { seed: 5 });
    let escapedNewlines = 0;
    for (let i = 0; i < 5_000; i++) {
      const line = generator.line(generator.row(i));
      assert.equal(line.indexOf('\n'), line.length - 1);
      assert.equal(line.split('\t').length, image.columns.length);
      if (line.includes('\\\\n')) escapedNewlines++;
    }
    // JSON descriptions with line breaks come out as \\n (JSON's \n, its backslash escaped).
    assert.ok(escapedNewlines > 0);
  });
});

describe('synthetic rows', () => {
  it('are reproducible for a seed, and independent of the order they are made in', () => {
    assert.deepEqual(rows(image, 11, 300), rows(image, 11, 300));
    const generator = createRowGenerator(image, { seed: 11 });
    const backwards = Array.from({ length: 300 }, (_, i) => generator.row(299 - i)).reverse();
    assert.deepEqual(backwards, rows(image, 11, 300));
    assert.deepEqual(rows(audio, 11, 50, 1_000), rows(audio, 11, 50, 1_000));
  });

  it('differ for another seed', () => {
    const a = rows(image, 11, 300);
    const b = rows(image, 12, 300);
    const keysA = new Set(a.map((r) => r.key));
    assert.ok(b.every((r) => !keysA.has(r.key)));
    const url = column(image, 'url');
    assert.ok(a.filter((r, i) => r.values[url] === b[i]?.values[url]).length === 0);
  });

  it('reject a bad seed or deleted fraction', () => {
    assert.throws(() => createRowGenerator(image, { seed: -1 }), /seed must be an integer/);
    assert.throws(() => createRowGenerator(image, { seed: 2 ** 32 }), /seed must be an integer/);
    assert.throws(() => createRowGenerator(image, { seed: 1.5 }), /seed must be an integer/);
    assert.throws(
      () => createRowGenerator(image, { seed: 1, deletedFraction: 2 }),
      /deletedFraction/,
    );
  });

  it('fill NOT NULL columns, respect varchar limits and keep uniques unique', () => {
    const generated = rows(image, 3, 20_000);
    const notNull = image.columns.flatMap((c, i) => (c.notNull ? [i] : []));
    const url = column(image, 'url');
    const fid = column(image, 'foreign_identifier');
    const provider = column(image, 'provider');
    const urls = new Set<string>();
    const fids = new Set<string>();
    for (const row of generated) {
      for (const i of notNull) assert.notEqual(row.values[i], null, image.columns[i]?.name);
      image.columns.forEach((c, i) => {
        const limit = /^varchar\((\d+)\)$/.exec(c.type)?.[1];
        const value = row.values[i];
        if (limit && value) assert.ok(value.length <= Number(limit), `${c.name} too long`);
      });
      urls.add(String(row.values[url]));
      fids.add(`${row.values[fid]}|${row.values[provider]}`);
    }
    assert.equal(new Set(generated.map((r) => r.key)).size, generated.length);
    assert.equal(urls.size, generated.length);
    assert.equal(fids.size, generated.length);
  });

  it('carry every kind of dirt at about the intended rates', () => {
    const n = 40_000;
    const generated = rows(image, 21, n);
    const at = (name: string) => column(image, name);
    const values = (name: string) => generated.map((r) => r.values[at(name)] ?? null);
    const share = (count: number, of = n) => count / of;
    const noScheme = (v: string | null) => v !== null && !/^https?:\/\//.test(v);

    const removed = generated.filter((r) => r.removed).length;
    assert.ok(Math.abs(share(removed) - syntheticRates.removed) < 0.01, `removed ${removed}`);
    assert.ok(generated.every((r) => (r.values[at('removed_from_source')] === 't') === r.removed));
    const landing = values('foreign_landing_url').filter(noScheme).length;
    assert.ok(Math.abs(share(landing) - syntheticRates.linkWithoutScheme) < 0.01);
    assert.ok(values('creator_url').filter(noScheme).length > 0);
    assert.ok(values('url').filter(noScheme).length > 0);
    const upper = values('license').filter((v) => v !== null && v !== v.toLowerCase()).length;
    assert.ok(Math.abs(share(upper) - syntheticRates.upperCaseLicense) < 0.005, `upper ${upper}`);
    for (const name of ['title', 'creator', 'creator_url', 'meta_data', 'tags', 'width']) {
      assert.ok(values(name).includes(null), `${name} has nulls`);
    }

    const tagLists = values('tags')
      .filter((v): v is string => v !== null)
      .map((v) => JSON.parse(v) as unknown);
    assert.ok(
      tagLists.some((t) => !Array.isArray(t)),
      'some tags are {} rather than a list',
    );
    const elements = tagLists.filter(Array.isArray).flat() as unknown[];
    const objects = elements.filter(
      (e): e is Record<string, unknown> => typeof e === 'object' && e !== null,
    );
    const machine = objects.filter((e) => typeof e.accuracy === 'number');
    const low = machine.filter((e) => (e.accuracy as number) < 0.9).length;
    assert.ok(share(low, machine.length) > 0.15 && share(low, machine.length) < 0.25);
    assert.ok(machine.every((e) => e.provider === 'clarifai'));
    assert.ok(
      elements.some((e) => typeof e === 'string'),
      'a tag that is a bare string',
    );
    assert.ok(
      elements.some((e) => e === null),
      'a tag that is null',
    );
    assert.ok(
      objects.some((e) => !('name' in e)),
      'a tag without a name',
    );
    assert.ok(
      objects.some((e) => typeof e.name === 'number'),
      'a tag with a numeric name',
    );
    assert.ok(
      objects.some((e) => e.name === ''),
      'a tag with an empty name',
    );
    assert.ok(objects.some((e) => e.name === 'squareformat' || e.name === 'no person'));

    const descriptions = values('meta_data')
      .filter((v): v is string => v !== null)
      .map((v) => (JSON.parse(v) as { description?: string }).description ?? '');
    assert.ok(descriptions.some((d) => /\b(running|water|bird)\b/.test(d)));

    const deleted = generated.filter((r) => r.deleted);
    assert.ok(deleted.length > 0 && deleted.every((r) => !r.removed));
    assert.ok(Math.abs(share(deleted.length, n - removed) - syntheticRates.deleted) < 0.003);
  });

  it('follow the sample provider mix and audio-specific columns', () => {
    const providers = new Map<string, number>();
    const provider = column(image, 'provider');
    for (const r of rows(image, 4, 10_000)) {
      const p = String(r.values[provider]);
      providers.set(p, (providers.get(p) ?? 0) + 1);
    }
    assert.ok((providers.get('flickr') ?? 0) > 4_800 && (providers.get('flickr') ?? 0) < 5_800);
    assert.ok(providers.has('wikimedia') && providers.has('geographorguk'));
    const genres = column(audio, 'genres');
    const audioRows = rows(audio, 4, 2_000);
    assert.ok(audioRows.some((r) => /^\{.+\}$/.test(r.values[genres] ?? '')));
    assert.ok(audioRows.every((r) => r.values[column(audio, 'provider')] !== 'flickr'));
  });

  it('work for a third media type with an integer key and an extra unique column', () => {
    const video = parseMediaDefinition(
      'video',
      {
        upstreamTable: 'video',
        downstreamTable: 'video',
        key: { column: 'id', type: 'bigint' },
        providerColumn: 'provider',
        columns: [
          { name: 'id', type: 'bigint', notNull: true },
          { name: 'provider', type: 'varchar(80)' },
          { name: 'slug', type: 'varchar(40)', notNull: true },
          { name: 'frame_rate', type: 'real' },
          { name: 'languages', type: 'text[]' },
          { name: 'recorded', type: 'date' },
          { name: 'preview_url', type: 'text' },
        ],
        uniques: [['slug']],
        document: { mapping: 'mappings/image.json', fields: { id: 'id' } },
      },
      path.join(repoRoot, 'packages/core/media'),
    );
    const generated = rows(video, 1, 2_000, 10);
    assert.deepEqual(
      generated.map((r) => r.key),
      Array.from({ length: 2_000 }, (_, i) => String(i + 11)),
    );
    const slug = column(video, 'slug');
    assert.equal(new Set(generated.map((r) => r.values[slug])).size, 2_000);
    assert.ok(generated.every((r) => (r.values[slug] ?? '').length <= 40));
    assert.ok(
      generated.some((r) => /^\d{4}-\d{2}-\d{2}$/.test(r.values[column(video, 'recorded')] ?? '')),
    );
    assert.ok(generated.some((r) => /^\{.*\}$/.test(r.values[column(video, 'languages')] ?? '')));
  });
});
