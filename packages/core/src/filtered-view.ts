/**
 * How a media type serves `<media>-filtered`, the view without documents that have sensitive
 * terms:
 * - `alias`: a filtered alias over the main index (`filter: { term: { sensitive: false } }`);
 *   each document is indexed once.
 * - `index`: a second index holding only the documents without sensitive terms; each of them is
 *   indexed twice.
 */
export const filteredModes = ['alias', 'index'] as const;
export type FilteredMode = (typeof filteredModes)[number];

/**
 * The boolean field every document carries in both modes: true when a sensitive field of its row
 * has a sensitive term (see refresh/row-rules.ts). Reserved: a media type cannot define it.
 */
export const SENSITIVE_FIELD = 'sensitive';

/** The query matching the documents without sensitive terms: the filtered alias's filter. */
export function nonSensitiveQuery(): { term: Record<string, false> } {
  return { term: { [SENSITIVE_FIELD]: false } };
}
