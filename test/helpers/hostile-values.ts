/**
 * Hostile values for the columns of faultDefinition (test/helpers/faults.ts): tag elements, whole
 * tags values, meta values, titles, URLs and licenses, generated from fixed lists and a fixed
 * seed. They carry no expected fate: the SQL oracle decides (test/helpers/sql-oracle.ts). The
 * kinds follow test/faults/poison-rows.test.ts and hostile-input.test.ts, plus the edges of every
 * rule: bounds compared as exact decimals, jsonb's numeric range, PostgreSQL's lower() and word
 * characters, duplicate and escaped keys.
 */

const q = JSON.stringify;
const nest = (depth: number, inner: string) => '['.repeat(depth) + inner + ']'.repeat(depth);
const objNest = (depth: number) => '{"a":'.repeat(depth) + '[1,true,null,"x"]' + '}'.repeat(depth);
const tag = (fields: string) => `{"name":"sunset",${fields}}`;

/** Accuracy values (JSON text), each put in an otherwise good tag. */
export const accuracies: readonly string[] = [
  // Numbers at and around the threshold, beyond a double's precision.
  '0.9',
  '0.90',
  '0.900000000000000000000000000000',
  '9e-1',
  '90E-2',
  '0.9e0',
  '0.8999999999999999999999',
  '0.9000000000000000000001',
  '0.89999999999999999999999999999999999999999999999999999999999999999999',
  '0.89999',
  '0.5',
  '1',
  '5',
  '0',
  '-0',
  '-0.0',
  '-0.5',
  '1e-400',
  '-1e-400',
  '1e-16383',
  // Numbers at and around Elasticsearch's float bound (3.4028234663852886e38).
  '3.4028234663852886e38',
  '-3.4028234663852886e38',
  '3.40282346638528860000001e38',
  '-3.40282346638528860000001e38',
  '3.4028234663852885e38',
  '3.4028234663852887e38',
  '340282346638528860000000000000000000000',
  '340282346638528860000000000000000000001',
  '3e38',
  '1e39',
  '1e400',
  '-1e400',
  '9'.repeat(400),
  '12345678901234567890',
  // Numeric strings.
  '"0.95"',
  '"0.5"',
  '" +0.95 "',
  '"9.5E-1"',
  '"\\t0.95\\n"',
  '"\\u000b0.95\\f"',
  '"\\r0.5"',
  '"+.95"',
  '"95e-2"',
  '"1."',
  '".9"',
  '"-0"',
  '"0.8999999999999999999999"',
  '"0.9000000000000000000001"',
  '"3.4028234663852886e38"',
  '"3.40282346638528860000001e38"',
  '"1e999"',
  '"1e-999"',
  '"1e1000"',
  '"1e39"',
  `"0.${'9'.repeat(97)}"`, // 100 characters
  `"0.${'9'.repeat(98)}"`, // 101 characters
  `"${'9'.repeat(400)}"`,
  '"abc"',
  '"NaN"',
  '"Infinity"',
  '"0x10"',
  '"1_0"',
  '"1,5"',
  '""',
  '" "',
  '"\\u00a00.95"', // a no-break space is not PostgreSQL's \s
  '"\u0661"', // an Arabic-Indic digit is not [0-9]
  // Neither.
  'true',
  'false',
  'null',
  '{"v":0.95}',
  '[0.95]',
  '[]',
];

/** Accuracy strings today's SQL fails on (its \s takes them, its numeric cast does not). */
export const sqlBreakingAccuracies: readonly string[] = [
  '"\\u30000.95"',
  '"0.5\\u2003"',
  '"\\u1680 0.95"',
  '"\\u2028 0.5"',
];

/** Tag elements (JSON text), all of which jsonb holds (those it refuses are in tagValues). */
export const elements: readonly string[] = [
  ...accuracies.map((a) => tag(`"accuracy":${a}`)),
  // The element itself.
  '5',
  '1e400',
  '"sunset"',
  'null',
  'true',
  'false',
  '[]',
  '[1,"a",{"name":"x"}]',
  nest(3000, '1'),
  '{}',
  objNest(200),
  // The name.
  '{"accuracy":0.99}',
  '{"name":5}',
  '{"name":1e400}',
  '{"name":true}',
  '{"name":null}',
  '{"name":{"en":"sunset"}}',
  '{"name":["sunset"]}',
  `{"name":${q('n'.repeat(255))}}`,
  `{"name":${q('n'.repeat(256))}}`,
  `{"name":${q('😀'.repeat(255))}}`,
  `{"name":${q('😀'.repeat(256))}}`,
  `{"name":${q('n'.repeat(5000))}}`,
  `{"name":${q('emoji 😀 שלום')}}`,
  `{"name":${q('tab\there\nnew\u0001line')}}`,
  '{"name":""}',
  '{"name":" "}',
  '{"name":5,"name":"dup, last wins"}',
  '{"name":"dup, last wins","name":5}',
  '{"n\\u0061me":"escaped key"}',
  '{"__proto__":{"name":"x"},"name":"proto"}',
  '{"name":"a\\/b\\u00e9\\t\\"q\\"","x":-0,"y":1E2,"z":1.50,"w":[1,{"b":2,"a":1,"a":3}],"v":-0.0e5}',
  ' { "name" : "spaced" ,\n\t"accuracy" : 0.95 } ',
  // The provider.
  tag('"provider":{"name":"clarifai"}'),
  tag('"provider":[]'),
  tag('"provider":["clarifai"]'),
  tag('"provider":5'),
  tag('"provider":5.0'),
  tag('"provider":1.50'),
  tag('"provider":1.5'),
  tag('"provider":1E2'),
  tag('"provider":100'),
  tag('"provider":true'),
  tag('"provider":"true"'),
  tag('"provider":null'),
  tag('"provider":""'),
  tag('"provider":"BadProvider"'),
  tag('"provider":"badprovider"'),
  tag('"provider":"rekognition"'),
  tag('"provider":"Rekognition"'),
  tag('"provider":"badprovider","provider":"ok"'),
  tag('"provider":"ok","provider":"badprovider"'),
  // Names the denylists (of the fault definition and of image and audio) may take.
  '{"name":"no person"}',
  '{"name":"No Person","accuracy":0.99}',
  '{"name":"NO PERSON"}',
  '{"name":"Uploaded:By=flickr"}',
  '{"name":"UPLOADED:BY"}',
  '{"name":"no persons"}',
  '{"name":"uploaded by"}',
  '{"name":"by"}',
  '{"name":"BY"}',
  '{"name":"bY"}',
  '{"name":"cc0"}',
  '{"name":"CC0 public domain"}',
  '{"name":"FLİCKRİOSAPP"}', // PostgreSQL lower-cases İ to i; JavaScript to i̇
  '{"name":"flickrIOSapp"}',
  '{"name":"ΣQUAREFORMAT"}',
  '{"name":"SQUAREFORMAT"}',
  '{"name":"by-nc-sa 2.0"}',
  '{"name":"\\u212a"}', // the Kelvin sign lower-cases to k
  '{"name":"pdm"}',
  '{"name":"PDM"}',
  '{"name":"a=b"}',
  '{"name":"geo:lat"}',
  // Fields the rules do not read.
  tag(`"extra":${objNest(40)}`),
  tag('"extra":1e400'),
  tag('"extra":[1e-400,true,null,"s",{"b":[]}]'),
  tag('"extra":"\\ud83d\\ude00"'),
];

/** Whole tags values that are not arrays, or that jsonb refuses. */
export const tagValues: readonly string[] = [
  '{}',
  '{"name":"sunset"}',
  '"sunset"',
  '5',
  '1e400',
  'true',
  'null',
  '[]',
  '[ ]',
  ' [\n] ',
  '[{"name":"a\\u0000b"}]',
  '[{"name":"sunset","provider":"p\\u0000"}]',
  '[{"name":"lone \\ud800 surrogate"}]',
  '[{"name":"sunset","extra":"\\udfff"}]',
  '[{"name":"pair broken \\ud800\\u0041"}]',
  '[{"name":"two highs \\ud800\\ud800\\udc00"}]',
  '[{"name":"sunset","extra":1e131072}]',
  '[{"name":"sunset","extra":1e131071}]',
  '[{"name":"sunset","extra":1e-16384}]',
  '[{"name":"sunset","extra":1.0e-16383}]',
  '[{"name":"sunset","extra":0e-16384}]',
  '[{"name":"sunset","extra":0e1073741822}]',
  '[{"name":"sunset","extra":0e1073741823}]',
  `[{"name":"sunset","extra":0.${'0'.repeat(16_382)}1}]`,
  `[{"name":"sunset","extra":0.${'0'.repeat(16_383)}1}]`,
  '[{"name":"\\\\u0000 is text here"}]',
  '[{"name":"ok"},{"name":"squareformat\\u0000"}]',
];

/** Values only a text column holds (json and jsonb refuse them at insert). */
export const invalidJson: readonly string[] = [
  '',
  ' ',
  '[{"name":"a"}',
  "{'name':'a'}",
  'NaN',
  '[1,]',
  '[01]',
  '[.5]',
  '["\\x41"]',
  '["tab\there"]',
  '[true false]',
  'nulls',
  '\ufeff[]',
];

/** meta values (JSON text), for `meta ->> 'description'`. */
export const metas: readonly string[] = [
  '{"description":"fine"}',
  '{"description":{"a":[1,2]}}',
  '{"description" :  { "a" : [1, 2] } }',
  '{"description":[1,"x",null]}',
  '{"description":1e400}',
  '{"description":-1e-400}',
  '{"description":-0}',
  '{"description":1E2}',
  '{"description":1.50}',
  '{"description":true}',
  '{"description":false}',
  '{"description":null}',
  '{"description":""}',
  `{"description":${q('long '.repeat(20_000))}}`,
  `{"description":${nest(3000, '"deep"')}}`,
  `{"description":${q('ctl \u0001\u001f end')}}`,
  '{"description":"first","description":"water, last"}',
  '{"description":"bird, first","description":null}',
  '{"desc\\u0072iption":"escaped key with bird"}',
  '{"description":"\\u00e9\\t\\"quoted\\" water\\n"}',
  '{"other":1}',
  '{"a":{"description":"nested, not read"}}',
  '[1,2]',
  '[{"description":"in an array"}]',
  '"a string"',
  '5',
  'null',
  nest(3000, '1'),
  '{"description":"nul \\u0000"}',
  '{"description":"\\ud800"}',
  '{"description":"fine","x":1e131072}',
];

/** Sensitive terms with edges: non-word first or last characters, case mappings, specials. */
export const hostileTerms: readonly string[] = [
  'running',
  'water',
  'bird',
  'c++',
  '-dash',
  'x.y',
  'a(b)',
  'no person',
  'straße',
  'ǆemal',
  'ǅemal',
  'σίσυφος',
  'i̇stanbul',
  'ıstanbul',
  '𐐨𐐯',
  '_under',
  'cc0',
];

/** Titles around the terms: case variants and what borders them. */
export function titles(): string[] {
  const borders = [
    '',
    ' ',
    '_',
    'a',
    'é',
    '😀',
    '𐐀',
    '\u0301',
    '-',
    '.',
    '1',
    'ß',
    'İ',
    'ı',
    '\u212a',
    '\u017f',
    '\u00a0',
    '\u3000',
    '\t',
    '\n',
    'ǅ',
    '\u0363',
    // Where PostgreSQL's word characters and Unicode's letters and numbers part ways.
    '\u0345',
    '²',
    '½',
    '\u2070',
    'Ⓐ',
    '٠',
    '𝟎',
  ];
  const words = [
    'water',
    'WATER',
    'Water',
    'wAtEr',
    'bırd',
    'BİRD',
    'bIrd',
    'Running',
    'runnİng',
    'C++',
    'c++x',
    'x.y',
    'X.Y',
    'a(b)',
    'STRASSE',
    'STRAẞE',
    'straße',
    'ǄEMAL',
    'ǅemal',
    'Ǆemal',
    'ΣΊΣΥΦΟΣ',
    'σίσυφος',
    'σίσυφοσ',
    'İSTANBUL',
    'istanbul',
    'ISTANBUL',
    '𐐀𐐇',
    '𐐨𐐯',
    '_under',
    '_UNDER',
    'no person',
    'NO  PERSON',
    'cc0',
    'CC0',
    'cc01',
    '-dash',
    '--dash',
  ];
  const out: string[] = [];
  for (const [i, w] of words.entries()) {
    for (const [j, b] of borders.entries()) {
      // Each word with each border before it, after it, and (a third of the time) both.
      out.push(`${b}${w}`, `${w}${b}`);
      if ((i + j) % 3 === 0) out.push(`x ${b}${w}${b} y`);
    }
  }
  return out;
}

/** URLs: what the scheme fix and the validity test make of them. */
export const urls: readonly string[] = [
  'https://example.org/a',
  'http://example.org/a',
  'example.org/ok',
  'HTTPS://EXAMPLE.ORG/A',
  'hTtP://x',
  'javascript:alert(1)',
  '',
  '   ',
  'http://',
  'https://?q',
  'https://#f',
  'https:///path',
  '//evil.example',
  'http://exa mple.org/x',
  'ftp://example.org/x',
  'mailto:x@example.org',
  'www.example.org:8080/x',
  'localhost:3000/x',
  '1.2.3.4/x',
  'é.example/x',
  'https://ü.example/x',
  'https://x\u3000y',
  'https://x\u00a0y',
  'https://x\u0085y',
  'https://x\u2028y',
  'https://x\u200by',
  'https://x\u001fy',
  'https://x\u007fy',
  'https://x\ty',
  'https://x\ny',
  ' https://x',
  'https://x ',
  'h:',
  'https:',
  'x+y-z.w:stuff',
  '+x:stuff',
];

/** Licenses: what btrim (spaces only) and PostgreSQL's lower() make of them (at most 20 chars). */
export const licenses: readonly string[] = [
  'by',
  'BY',
  '  BY  ',
  '\tby',
  'by\t',
  'BY\u00a0',
  '',
  ' ',
  '\u3000',
  'İ',
  'ΣΑΣ',
  'Ǆ',
  'ǅ',
  'ẞ',
  'CC0',
  'By-Nc-Sa',
  '\u212a',
  'Ⅻ',
  'Ⓐ',
  '𐐀',
];

/** mulberry32: a small seeded generator, so the same seed always makes the same values. */
export function seeded(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
  return {
    next,
    int: (min: number, max: number) => min + Math.floor(next() * (max - min + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
  };
}

/** One row of a faultDefinition table. */
export interface HostileRow {
  readonly id: number;
  readonly title: string | null;
  readonly provider: string | null;
  readonly license: string;
  readonly url: string;
  readonly thumbnail: string | null;
  readonly tags: string | null;
  readonly meta: string | null;
}

/**
 * Rows carrying every value above once (each tag element between two good tags), then `random`
 * rows mixing them. `text`: the tags column is text, so invalid JSON is included.
 */
export function hostileRows(opts: { seed: number; random: number; text?: boolean }): HostileRow[] {
  const r = seeded(opts.seed);
  const good = () =>
    `{"name":"${r.pick(['sunset', 'harbour', 'snow'])}","accuracy":0.95,"provider":"p1"}`;
  const rows: HostileRow[] = [];
  const base = (): Omit<HostileRow, 'id'> => ({
    title: 'a title',
    provider: 'p1',
    license: 'by',
    url: `https://example.org/${rows.length}`,
    thumbnail: null,
    tags: `[${good()}]`,
    meta: '{"description":"fine"}',
  });
  const add = (over: Partial<HostileRow>) => rows.push({ ...base(), ...over, id: rows.length + 1 });
  for (const e of elements) add({ tags: `[${good()},${e},${good()}]` });
  for (const e of elements) add({ tags: `[${e}]` });
  for (const tags of tagValues) add({ tags });
  if (opts.text) {
    for (const v of invalidJson) add({ tags: v });
  }
  for (const meta of metas) add({ meta });
  for (const title of titles()) add({ title });
  for (const url of urls) {
    add({ url });
    add({ thumbnail: url });
  }
  for (const license of licenses) add({ license });
  add({ title: null, tags: null, meta: null });
  for (let i = 0; i < opts.random; i++) {
    const list: string[] = [];
    for (let n = r.int(0, 8); n > 0; n--) list.push(r.next() < 0.3 ? good() : r.pick(elements));
    add({
      title: r.next() < 0.5 ? r.pick(titles()) : null,
      license: r.next() < 0.2 ? r.pick(licenses) : 'by',
      url: r.next() < 0.2 ? r.pick(urls) : `https://example.org/r${i}`,
      thumbnail: r.next() < 0.3 ? r.pick(urls) : null,
      tags: r.next() < 0.1 ? r.pick(tagValues) : `[${list.join(',')}]`,
      meta: r.next() < 0.3 ? r.pick(metas) : '{"description":"fine"}',
    });
  }
  // Two huge arrays cycling through the short elements.
  const small = elements.filter((e) => e.length < 400);
  for (const n of [30_000, 12_345]) {
    add({ tags: `[${Array.from({ length: n }, (_, i) => small[i % small.length]).join(',')}]` });
  }
  return rows;
}
