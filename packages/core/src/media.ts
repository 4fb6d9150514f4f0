import { existsSync, readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { filteredModes, SENSITIVE_FIELD } from './filtered-view.js';
import { checkColumnType, checkIdentifier } from './sql.js';

/** Media type names: they become table, index and alias names, so they are strict. */
export const mediaNamePattern = /^[a-z][a-z0-9_]{0,29}$/;

const identifier = z.string().superRefine((value, ctx) => {
  try {
    checkIdentifier(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
const columnType = z.string().superRefine((value, ctx) => {
  try {
    checkColumnType(value);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
  }
});
const fieldName = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'document field names are lower-case');

const documentField = z.union([
  identifier,
  z.object({ column: identifier, key: z.string().regex(/^[A-Za-z0-9_]{1,63}$/) }).strict(),
]);

const mediaSchema = z
  .object({
    upstreamTable: identifier,
    deletedTable: identifier.optional(),
    downstreamTable: identifier,
    key: z.object({ column: identifier, type: z.enum(['uuid', 'integer', 'bigint']) }).strict(),
    removedColumn: identifier.optional(),
    providerColumn: identifier,
    columns: z
      .array(
        z.object({ name: identifier, type: columnType, notNull: z.boolean().optional() }).strict(),
      )
      .min(1),
    uniques: z.array(z.array(identifier).min(1)).default([]),
    indexes: z.array(z.array(identifier).min(1)).default([]),
    cleaning: z
      .object({
        urlColumns: z.array(identifier).default([]),
        licenseColumn: identifier.optional(),
        /**
         * The tag rules, applied to each element of the tags array in this order (the first that
         * matches drops the tag, counted by reason): `malformed` (not an object, a name that is
         * not a string or longer than `maxNameLength`, an accuracy that is not a number or a
         * numeric string or is beyond Elasticsearch's float, a provider that is an object or an
         * array), `low-accuracy` (accuracy below `minAccuracy`; a tag without one is kept),
         * `denylisted-provider` (provider exactly one of `denylistedProviders`), `denylisted`
         * (the lower-cased name is exactly one of `denylist` or contains one of
         * `denylistSubstrings`, both compared lower-cased).
         */
        tags: z
          .object({
            column: identifier,
            minAccuracy: z.number().min(0).max(1),
            denylistedProviders: z.array(z.string()).default([]),
            denylist: z.array(z.string()).default([]),
            denylistSubstrings: z.array(z.string()).default([]),
            /** Longest tag name kept, in characters; absent: no limit (Openverse has none). */
            maxNameLength: z.number().int().positive().optional(),
          })
          .strict()
          .optional(),
      })
      .strict()
      .default({ urlColumns: [] }),
    document: z
      .object({
        mapping: z.string().min(1),
        fields: z.record(fieldName, documentField),
        sensitiveFields: z.array(fieldName).default([]),
      })
      .strict(),
    /**
     * How `<media>-filtered` is served (see filtered-view.ts): `alias` (default), a filtered alias
     * over the main index, each document indexed once; or `index`, a second index of the
     * documents without sensitive terms.
     */
    filtered: z
      .enum(filteredModes, {
        error: (issue) =>
          `must be "alias" (a filtered alias over the main index) or "index" (a second index), got ${JSON.stringify(issue.input)}`,
      })
      .default('alias'),
    chunkSizeRows: z.number().int().positive().default(100_000),
    /**
     * Primary shards of each new index (1-1024). Absent: the mapping file's `number_of_shards`
     * (1 in the shipped mappings). Replicas come from ELASTICSEARCH_REPLICAS, at finalize.
     */
    shards: z
      .number({ error: 'must be a whole number of primary shards from 1 to 1024, like 3' })
      .int({ error: 'must be a whole number of primary shards from 1 to 1024, like 3' })
      .min(1, { error: 'must be a whole number of primary shards from 1 to 1024, like 3' })
      .max(1024, { error: 'must be a whole number of primary shards from 1 to 1024, like 3' })
      .optional(),
  })
  .strict();

export type MediaDefinitionInput = z.input<typeof mediaSchema>;

/** One media type, validated, with its mapping file loaded. */
export type MediaDefinition = z.infer<typeof mediaSchema> & {
  readonly name: string;
  /** The index settings and mappings body (from the mapping file). */
  readonly mappingBody: Record<string, unknown>;
};

export type MediaCatalog = ReadonlyMap<string, MediaDefinition>;

/**
 * The mapping file's path, which must stay inside the folder of the definitions file (after
 * `..` and symbolic links): a definition never makes Freshet read a file elsewhere.
 */
function insideFolder(name: string, baseDir: string, mapping: string): string {
  const resolved = path.resolve(baseDir, mapping);
  const real = (p: string) => (existsSync(p) ? realpathSync(p) : p);
  const relative = path.relative(real(baseDir), real(resolved));
  if (
    relative === '' ||
    relative === '..' ||
    relative.startsWith(`..${path.sep}`) ||
    path.isAbsolute(relative)
  ) {
    throw new Error(
      `media type ${name}: document.mapping must be a file inside the media folder ${baseDir}, got ${JSON.stringify(mapping)}`,
    );
  }
  return resolved;
}

/** Validates one definition and cross-checks its references (columns, fields, mapping). */
export function parseMediaDefinition(
  name: string,
  input: unknown,
  baseDir: string,
): MediaDefinition {
  if (!mediaNamePattern.test(name)) {
    throw new Error(
      `media type name must be lower-case letters, digits or _ (starting with a letter, at most 30), got ${JSON.stringify(name)}`,
    );
  }
  const parsed = mediaSchema.safeParse(input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    throw new Error(`media type ${name} is invalid: ${problems.join('; ')}`);
  }
  const def = parsed.data;
  const columns = new Set(def.columns.map((c) => c.name));
  const referenced = [
    def.key.column,
    def.providerColumn,
    ...(def.removedColumn ? [def.removedColumn] : []),
    ...def.uniques.flat(),
    ...def.indexes.flat(),
    ...def.cleaning.urlColumns,
    ...(def.cleaning.licenseColumn ? [def.cleaning.licenseColumn] : []),
    ...(def.cleaning.tags ? [def.cleaning.tags.column] : []),
    ...Object.values(def.document.fields).map((f) => (typeof f === 'string' ? f : f.column)),
  ];
  for (const col of referenced) {
    if (!columns.has(col)) throw new Error(`media type ${name} refers to unknown column ${col}`);
  }
  if (SENSITIVE_FIELD in def.document.fields) {
    throw new Error(
      `media type ${name}: document field ${SENSITIVE_FIELD} is reserved (every document gets it, true when a sensitive field has a sensitive term); rename the field`,
    );
  }
  for (const field of def.document.sensitiveFields) {
    if (!(field in def.document.fields)) {
      throw new Error(`media type ${name}: sensitive field ${field} is not a document field`);
    }
  }
  const mappingPath = insideFolder(name, baseDir, def.document.mapping);
  let mappingBody: Record<string, unknown>;
  try {
    mappingBody = JSON.parse(readFileSync(mappingPath, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`media type ${name}: cannot read mapping file ${mappingPath}`, { cause: err });
  }
  const mappings = mappingBody.mappings as
    { properties?: Record<string, { type?: unknown } | undefined> } | undefined;
  const declared = mappings?.properties?.[SENSITIVE_FIELD];
  if (declared !== undefined && declared.type !== 'boolean') {
    throw new Error(
      `media type ${name}: mapping file ${mappingPath} maps ${SENSITIVE_FIELD} as ${JSON.stringify(declared)}; Freshet maps it as a boolean itself (remove it from the mapping)`,
    );
  }
  return Object.freeze({ ...def, name, mappingBody });
}

/** Loads every media type from a definitions file (JSON object keyed by media name). */
export function loadMediaCatalog(file: string): MediaCatalog {
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new Error(`cannot read media definitions ${file}: ${(err as Error).message}`, {
      cause: err,
    });
  }
  const baseDir = path.dirname(file);
  const catalog = new Map<string, MediaDefinition>();
  for (const [name, input] of Object.entries(raw)) {
    if (name.startsWith('$')) continue;
    catalog.set(name, parseMediaDefinition(name, input, baseDir));
  }
  return catalog;
}

/** The definition of `media`, or an error listing the known types. */
export function getMedia(catalog: MediaCatalog, media: string): MediaDefinition {
  const def = catalog.get(media);
  if (!def) {
    throw new UnknownMediaError(media, [...catalog.keys()]);
  }
  return def;
}

export class UnknownMediaError extends Error {
  override readonly name = 'UnknownMediaError';
  constructor(
    readonly media: string,
    readonly known: readonly string[],
  ) {
    super(`unknown media type ${JSON.stringify(media)}; known types: ${known.join(', ')}`);
  }
}

/** `CREATE TABLE` column list for a media type's rows. */
export function columnDefinitions(def: MediaDefinition): string {
  return def.columns
    .map((c) => `"${c.name}" ${c.type}${c.notNull ? ' NOT NULL' : ''}`)
    .join(',\n  ');
}
