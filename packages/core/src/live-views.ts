import type { Client } from '@elastic/elasticsearch';
import type { FilteredMode } from './filtered-view.js';
import type { MediaDefinition } from './media.js';
import { refreshNames, type Profile } from './names.js';

/** Where one alias is now: each index holding it, with the alias's filter (null: none). */
export type AliasHolders = { index: string; filter: unknown }[];

/** A media type's live search views, as Elasticsearch has them now. */
export interface LiveViews {
  readonly media: string;
  /** The mode the definition asks for (the next refresh builds it). */
  readonly filtered: FilteredMode;
  readonly alias: string;
  readonly main: AliasHolders;
  readonly filteredAlias: string;
  readonly filteredHolders: AliasHolders;
  /**
   * The mode the live aliases are in: `alias` when the filtered alias is a filter over the main
   * alias's index, `index` when it is on an index of its own, null when nothing is promoted (or
   * the aliases are in neither shape).
   */
  readonly live: FilteredMode | null;
}

/** The indices holding `alias`, each with the alias's filter. */
export async function aliasFilters(es: Client, alias: string): Promise<AliasHolders> {
  if (!(await es.indices.existsAlias({ name: alias }))) return [];
  const res = await es.indices.getAlias({ name: alias });
  return Object.entries(res).map(([index, v]) => ({
    index,
    filter: (v.aliases[alias] as { filter?: unknown } | undefined)?.filter ?? null,
  }));
}

/** Reads where `def`'s main and filtered aliases are now, under `profile`. */
export async function liveViews(
  es: Client,
  def: MediaDefinition,
  profile: Profile,
  indexPrefix: string,
): Promise<LiveViews> {
  // Only the alias names are used: they do not depend on a run.
  const names = refreshNames(def, profile, 'live', indexPrefix);
  const main = await aliasFilters(es, names.alias);
  const filteredHolders = await aliasFilters(es, names.filteredAlias);
  const [m] = main;
  const [f] = filteredHolders;
  let live: FilteredMode | null = null;
  if (main.length === 1 && filteredHolders.length === 1 && m && f) {
    if (f.index === m.index && f.filter !== null) live = 'alias';
    else if (f.index !== m.index && f.filter === null) live = 'index';
  }
  return {
    media: def.name,
    filtered: def.filtered,
    alias: names.alias,
    main,
    filteredAlias: names.filteredAlias,
    filteredHolders,
    live,
  };
}

/** One line for the terminal, e.g. `image (filtered: alias): image -> ...; image-filtered -> ...`. */
export function formatLiveViews(v: LiveViews): string {
  const where = (holders: AliasHolders) =>
    holders.length === 0
      ? '(none)'
      : holders
          .map((h) => `${h.index}${h.filter === null ? '' : ` filter ${JSON.stringify(h.filter)}`}`)
          .join(', ');
  const head = `${v.media} (filtered: ${v.filtered}): `;
  if (v.main.length === 0 && v.filteredHolders.length === 0) return `${head}not promoted yet`;
  const note =
    v.live === null
      ? '; the aliases are in neither mode: the next refresh moves both'
      : v.live !== v.filtered
        ? `; live in ${v.live} mode, the next refresh switches it to ${v.filtered} mode`
        : '';
  return `${head}${v.alias} -> ${where(v.main)}; ${v.filteredAlias} -> ${where(v.filteredHolders)}${note}`;
}
