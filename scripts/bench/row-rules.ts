// Row rules throughput: µs per row for parsing COPY text, cleaning (rules + document +
// sensitivity) and encoding, single thread, on synthetic rows as PostgreSQL's COPY TO text gives
// them. A measurement, not a test:
//   node --import tsx scripts/bench/row-rules.ts [--media image] [--rows 200000] [--rounds 7]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import {
  compileRowRules,
  CopyTextParser,
  encodeCopyTextRow,
  getMedia,
  ident,
  loadConfig,
  loadMediaCatalog,
  parseSensitiveTerms,
  seedSynthetic,
} from '@freshet/core';

const { values: args } = parseArgs({
  options: {
    media: { type: 'string', default: 'image' },
    rows: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '7' },
  },
});
const rows = Number(args.rows);
const rounds = Number(args.rounds);
const config = loadConfig();
const def = getMedia(loadMediaCatalog(config.FRESHET_MEDIA_FILE), args.media);
const terms = parseSensitiveTerms(readFileSync(config.SENSITIVE_TERMS_FILE, 'utf8'));

const adminUrl = new URL(config.CATALOG_DATABASE_URL);
adminUrl.pathname = '/postgres';
const db = `freshet_bench_rules_${process.pid}`;
const admin = new pg.Client({ connectionString: adminUrl.toString() });
await admin.connect();
await admin.query(`CREATE DATABASE ${db}`);
const url = new URL(adminUrl);
url.pathname = `/${db}`;
const pool = new pg.Pool({ connectionString: url.toString(), max: 2 });

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (x: number) => x.toFixed(2).padStart(6);

try {
  await seedSynthetic(pool, def, { rows });
  const client = await pool.connect();
  const chunks: Buffer[] = [];
  try {
    await client.query(`SET TimeZone = 'UTC'; SET DateStyle = 'ISO'`);
    const cols = def.columns.map((c) => ident(c.name)).join(', ');
    const stream = client.query(
      copyTo(`COPY (SELECT ${cols} FROM ${ident(def.upstreamTable)}) TO STDOUT`),
    );
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(chunk));
  } finally {
    client.release();
  }
  const bytes = chunks.reduce((n, c) => n + c.length, 0);
  const rules = compileRowRules(def, terms);
  // Streaming, as the chunk job runs: rows are cleaned as they are parsed and then dropped, so
  // the garbage is short-lived. Three passes a round; each stage is the difference of two.
  const pass = (stage: 'parse' | 'clean' | 'encode') => {
    let n = 0;
    let kept = 0;
    let sensitive = 0;
    let size = 0;
    const onRow = (fields: (string | null)[]) => {
      n++;
      if (stage === 'parse') return;
      const outcome = rules.clean(fields);
      if (outcome.rejected !== undefined) return;
      kept++;
      if (outcome.sensitive) sensitive++;
      size += outcome.document.length;
      if (stage === 'encode') size += encodeCopyTextRow(outcome.values).length;
    };
    const t = performance.now();
    const parser = new CopyTextParser(def.columns.length);
    for (const chunk of chunks) parser.push(chunk, onRow);
    parser.end();
    return { us: ((performance.now() - t) * 1000) / n, n, kept, sensitive, size };
  };
  const timing = { parse: [] as number[], clean: [] as number[], encode: [] as number[] };
  let last = pass('parse');
  for (let round = 0; round < rounds; round++) {
    const parsed = pass('parse');
    const cleaned = pass('clean');
    const encoded = pass('encode');
    timing.parse.push(parsed.us);
    timing.clean.push(cleaned.us - parsed.us);
    timing.encode.push(encoded.us - cleaned.us);
    last = encoded;
  }
  console.log(
    `${def.name}: ${last.n} rows (${(bytes / last.n).toFixed(0)} bytes each as COPY text), ${last.kept} kept, ${last.sensitive} sensitive; node ${process.version}, median of ${rounds} rounds`,
  );
  const line = (what: string, xs: number[]) =>
    console.log(
      `  ${what.padEnd(20)} ${fmt(median(xs))} µs/row   (rounds: ${xs.map(fmt).join(' ')})`,
    );
  line('parse COPY text', timing.parse);
  line('clean+doc+sensitive', timing.clean);
  line('encode COPY text', timing.encode);
  line(
    'total',
    timing.parse.map((p, i) => p + (timing.clean[i] as number) + (timing.encode[i] as number)),
  );
} finally {
  await pool.end();
  await admin.query(`DROP DATABASE IF EXISTS ${db} WITH (FORCE)`);
  await admin.end();
}
