import { hash32, type Random, Weighted } from './random.js';

/**
 * Word lists and provider profiles that make synthetic rows look like Openverse's catalog:
 * the provider mix, URL shapes and license mix follow the Openverse sample
 * (sample_images_to_clean.csv: flickr 53%, geographorguk 16%, wikimedia 12%, eol 9%, ...).
 */

/** Words for titles, descriptions and tags; includes the sample's sensitive terms. */
export const words: readonly string[] = [
  'sunset',
  'river',
  'mountain',
  'water',
  'bird',
  'running',
  'street',
  'city',
  'portrait',
  'forest',
  'lake',
  'bridge',
  'church',
  'garden',
  'flower',
  'tree',
  'beach',
  'harbour',
  'train',
  'station',
  'market',
  'festival',
  'museum',
  'painting',
  'sculpture',
  'castle',
  'village',
  'road',
  'snow',
  'winter',
  'summer',
  'autumn',
  'spring',
  'morning',
  'evening',
  'night',
  'light',
  'shadow',
  'cloud',
  'sky',
  'field',
  'farm',
  'horse',
  'dog',
  'cat',
  'insect',
  'butterfly',
  'leaf',
  'stone',
  'wall',
  'window',
  'door',
  'tower',
  'ship',
  'boat',
  'island',
  'coast',
  'cliff',
  'valley',
  'hill',
  'path',
  'park',
  'crowd',
  'concert',
  'guitar',
  'drum',
  'piano',
  'choir',
  'dance',
  'marathon',
  'race',
  'football',
  'cycling',
  'swimming',
  'mural',
  'graffiti',
  'poster',
  'map',
  'manuscript',
  'fossil',
  'specimen',
  'plant',
  'fungus',
  'beetle',
  'spider',
  'fish',
  'reef',
  'desert',
  'canyon',
  'glacier',
  'volcano',
  'waterfall',
  'rain',
  'storm',
  'fog',
  'moon',
  'star',
  'lamp',
  'market hall',
  'old town',
  'black and white',
  'landscape',
  'architecture',
  'people',
  'family',
  'child',
  'wedding',
  'parade',
];

/** First and last names for creators (a few with non-ASCII letters, as in the sample). */
const firstNames: readonly string[] = [
  'Anna',
  'Paul',
  'María',
  'José',
  'Li',
  'Amara',
  'Jonas',
  'Sofía',
  'Kenji',
  'Olga',
  'Tomás',
  'Ingrid',
  'Ravi',
  'Chloé',
  'Mateus',
  'Fatima',
  'Ewa',
  'Noah',
  'Aiko',
  'Björn',
];
const lastNames: readonly string[] = [
  'Smith',
  'García',
  'Nguyen',
  'Kowalski',
  'Müller',
  'Rossi',
  'Silva',
  "O'Brien",
  'Tanaka',
  'Dubois',
  'Novak',
  'Haddad',
  'Jensen',
  'Okafor',
  'Ivanova',
  'Costa',
  'Park',
  'Larsen',
];
const placeNames: readonly string[] = [
  'São José',
  'Zürich',
  'Kraków',
  'Harrow',
  'Garsdale Head',
  'Irkutsk',
  'Perugia',
  'Smyrna',
  'Reykjavík',
  'Montréal',
  'Ōsaka',
  'Córdoba',
];

/** Genres like the audio sample's `genres` arrays. */
export const genres: readonly string[] = [
  'rock',
  'pop',
  'electronic',
  'classical',
  'metal',
  'punk',
  'jazz',
  'hip hop',
  'ambient',
  'folk',
  'gospel',
  'choral',
  'alternativerock',
  'hardcore',
];

/** A creator: display name and the slug used in profile URLs. */
export interface Creator {
  readonly name: string;
  readonly slug: string;
}

/** Slugs of every first+last name pair, computed once (slugify is slow on the hot path). */
let slugs: string[][] | undefined;

/** A random creator. */
export function creator(r: Random): Creator {
  slugs ??= firstNames.map((f) => lastNames.map((l) => slugify(`${f}${l}`)));
  const fi = Math.floor(r.next() * firstNames.length);
  const li = Math.floor(r.next() * lastNames.length);
  const first = firstNames[fi] as string;
  const last = lastNames[li] as string;
  const name = r.chance(0.15) ? `${first.toUpperCase()} ${last.toUpperCase()}` : `${first} ${last}`;
  return { name, slug: `${(slugs[fi] as string[])[li] as string}${r.int(1, 999)}` };
}

/** Lower-case ASCII slug of `text` (accents dropped, runs of other characters become `-`). */
export function slugify(text: string): string {
  return text
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

function capitalize(word: string): string {
  return word.charAt(0).toUpperCase() + word.slice(1);
}

/** A few words from the list, space-separated. */
export function phrase(r: Random, min: number, max: number): string {
  const n = r.int(min, max);
  let out = r.pick(words);
  for (let i = 1; i < n; i++) out += ' ' + r.pick(words);
  return out;
}

/** A title: words in title case, sometimes a place name, an apostrophe or a camera file name. */
export function title(r: Random, style: 'camera' | 'file' | 'plain'): string {
  if (style === 'camera' && r.chance(0.3)) {
    return `${r.pick(['IMG_', 'DSC_', 'P', 'DSCF'])}${String(r.int(1, 9999)).padStart(4, '0')}`;
  }
  const n = r.int(1, 4);
  let text = capitalize(r.pick(words));
  for (let i = 1; i < n; i++) text += ' ' + capitalize(r.pick(words));
  if (r.chance(0.15)) text += ` in ${r.pick(placeNames)}`;
  if (r.chance(0.03)) text = `'${text}'`;
  if (style === 'file') text = `File:${text}.jpg`;
  return text;
}

/**
 * A description: a sentence or two, now and then with a line break, a tab or a backslash
 * (real descriptions carry them, and they exercise COPY escaping).
 */
export function description(r: Random): string {
  let text = capitalize(phrase(r, 5, 16)) + '.';
  if (r.chance(0.3)) text += ' ' + capitalize(phrase(r, 3, 10)) + '.';
  if (r.chance(0.04)) text += '\n' + capitalize(phrase(r, 3, 8)) + '.';
  if (r.chance(0.005)) text += '\tScanned from C:\\archive\\' + String(r.int(1, 999)) + '.tif';
  if (r.chance(0.01)) text += ' "' + r.pick(placeNames) + '"';
  return text;
}

/** URLs and foreign id of one row, all derived from the row's unique number `n`. */
export interface Links {
  readonly foreignId: string;
  readonly url: string;
  readonly thumbnail: string | null;
  readonly landing: string;
  readonly creatorUrl: string | null;
}

/** How rows of one provider look. */
export interface ProviderProfile {
  readonly name: string;
  readonly weight: number;
  /** Whether rows carry machine-generated (clarifai) tags with accuracies. */
  readonly machineTags: boolean;
  readonly titleStyle: 'camera' | 'file' | 'plain';
  readonly ingestion: readonly (readonly [string, number])[];
  /**
   * Builds the row's links. `n` is unique per row (a bijection of the row index), and every
   * foreign id and URL embeds it, so `url` and `(foreign_identifier, provider)` stay unique.
   */
  links(n: number, r: Random, who: Creator, name: string): Links;
}

function hexWord(r: Random, chars: number): string {
  return r.uint32().toString(16).padStart(8, '0').slice(0, chars);
}

const imageProfiles: readonly ProviderProfile[] = [
  {
    name: 'flickr',
    weight: 53,
    machineTags: true,
    titleStyle: 'camera',
    ingestion: [
      ['provider_api', 60],
      ['commoncrawl', 40],
    ],
    links(n, r) {
      const id = String(60_000_000_000 + n);
      const owner = `${r.int(10_000_000, 199_999_999)}@N0${r.int(0, 8)}`;
      const server = r.int(1000, 65535);
      const secret = hexWord(r, 8) + hexWord(r, 2);
      const base = `https://live.staticflickr.com/${server}/${id}_${secret}`;
      return {
        foreignId: id,
        url: `${base}_b.jpg`,
        thumbnail: `${base}_m.jpg`,
        landing: `https://www.flickr.com/photos/${owner}/${id}`,
        creatorUrl: `https://www.flickr.com/photos/${owner}`,
      };
    },
  },
  {
    name: 'geographorguk',
    weight: 16,
    machineTags: false,
    titleStyle: 'plain',
    ingestion: [['provider_api', 100]],
    links(n, r) {
      const id = String(10_000_000 + n);
      const p = id.padStart(8, '0');
      return {
        foreignId: id,
        url: `https://s0.geograph.org.uk/geophotos/${p.slice(0, 2)}/${p.slice(2, 4)}/${p.slice(4, 6)}/${id}_${hexWord(r, 8)}.jpg`,
        thumbnail: null,
        landing: `https://www.geograph.org.uk/photo/${id}`,
        creatorUrl: `https://www.geograph.org.uk/profile/${r.int(1, 99_999)}`,
      };
    },
  },
  {
    name: 'wikimedia',
    weight: 12,
    machineTags: false,
    titleStyle: 'file',
    ingestion: [['provider_api', 100]],
    links(n, r, who, name) {
      const id = String(200_000_000 + n);
      const h = hexWord(r, 2);
      const file = encodeURIComponent(
        `${name.replace(/^File:|\.jpg$/g, '').replace(/ /g, '_')}_(${id}).jpg`,
      );
      return {
        foreignId: id,
        url: `https://upload.wikimedia.org/wikipedia/commons/${h.charAt(0)}/${h}/${file}`,
        thumbnail: null,
        landing: `https://commons.wikimedia.org/w/index.php?curid=${id}`,
        creatorUrl: r.chance(0.5) ? `https://commons.wikimedia.org/wiki/User:${who.slug}` : null,
      };
    },
  },
  {
    name: 'eol',
    weight: 9,
    machineTags: false,
    titleStyle: 'plain',
    ingestion: [['provider_api', 100]],
    links(n, r) {
      const id = String(50_000_000 + n);
      const path = `${r.int(2010, 2016)}/${String(r.int(1, 12)).padStart(2, '0')}/${String(r.int(1, 28)).padStart(2, '0')}/${r.int(10, 23)}/${id}`;
      return {
        foreignId: id,
        url: `https://media.eol.org/content/${path}_580_360.jpg`,
        thumbnail: `https://media.eol.org/content/${path}_98_68.jpg`,
        landing: `https://eol.org/pages/${id}/overview`,
        creatorUrl: null,
      };
    },
  },
  {
    name: 'rijksmuseum',
    weight: 4,
    machineTags: false,
    titleStyle: 'plain',
    ingestion: [['provider_api', 100]],
    links(n, r) {
      const id = `RP-P-${1900 + (n % 120)}-${n}`;
      const image = `${hexWord(r, 8)}${hexWord(r, 8)}${n.toString(36)}`;
      return {
        foreignId: id,
        url: `https://lh3.googleusercontent.com/${image}=s0`,
        thumbnail: `https://lh3.googleusercontent.com/${image}=s200`,
        landing: `https://www.rijksmuseum.nl/en/collection/${id}`,
        creatorUrl: null,
      };
    },
  },
  {
    name: 'behance',
    weight: 3,
    machineTags: true,
    titleStyle: 'plain',
    ingestion: [['provider_api', 100]],
    links(n, r, who, name) {
      const url = `https://mir-s3-cdn-cf.behance.net/project_modules/max_1200/${hexWord(r, 6)}${n}.${hexWord(r, 8)}.jpg`;
      return {
        foreignId: url,
        url,
        thumbnail: null,
        landing: `https://www.behance.net/gallery/${n}/${slugify(name)}`,
        creatorUrl: `https://www.behance.net/${who.slug}`,
      };
    },
  },
  {
    name: 'deviantart',
    weight: 2,
    machineTags: true,
    titleStyle: 'plain',
    ingestion: [['provider_api', 100]],
    links(n, r, who, name) {
      const id = String(1_000_000_000 + n);
      return {
        foreignId: id,
        url: `https://images-wixmp-ed30a86b8c4ca887773594c2.wixmp.com/f/${r.uuid()}/${id}.jpg`,
        thumbnail: null,
        landing: `https://www.deviantart.com/${who.slug}/art/${slugify(name)}-${id}`,
        creatorUrl: `https://www.deviantart.com/${who.slug}`,
      };
    },
  },
  {
    name: '500px',
    weight: 1,
    machineTags: true,
    titleStyle: 'camera',
    ingestion: [['provider_api', 100]],
    links(n, r, who) {
      const id = String(1_000_000_000 + n);
      return {
        foreignId: id,
        url: `https://drscdn.500px.org/photo/${id}/m%3D2048/v2?sig=${hexWord(r, 8)}${hexWord(r, 8)}`,
        thumbnail: `https://drscdn.500px.org/photo/${id}/m%3D300/v2?sig=${hexWord(r, 8)}`,
        landing: `https://500px.com/photo/${id}`,
        creatorUrl: `https://500px.com/${who.slug}`,
      };
    },
  },
];

const audioProfiles: readonly ProviderProfile[] = [
  {
    name: 'jamendo',
    weight: 70,
    machineTags: false,
    titleStyle: 'plain',
    ingestion: [
      ['provider_api', 80],
      ['commoncrawl', 20],
    ],
    links(n, r, who) {
      const id = String(2_000_000 + n);
      const album = r.int(1, 600_000);
      return {
        foreignId: id,
        url: `https://mp3d.jamendo.com/download/track/${id}/mp32`,
        thumbnail: `https://usercontent.jamendo.com?type=album&id=${album}&width=200&trackid=${id}`,
        landing: `https://www.jamendo.com/track/${id}`,
        creatorUrl: `https://www.jamendo.com/artist/${r.int(1, 500_000)}/${who.slug}`,
      };
    },
  },
  {
    name: 'freesound',
    weight: 20,
    machineTags: false,
    titleStyle: 'plain',
    ingestion: [['provider_api', 100]],
    links(n, r, who) {
      const id = String(1_000_000 + n);
      return {
        foreignId: id,
        url: `https://cdn.freesound.org/previews/${Math.floor(n / 1000)}/${id}_${r.int(1, 9_999_999)}-hq.mp3`,
        thumbnail: null,
        landing: `https://freesound.org/people/${who.slug}/sounds/${id}/`,
        creatorUrl: `https://freesound.org/people/${who.slug}/`,
      };
    },
  },
  {
    name: 'wikimedia_audio',
    weight: 7,
    machineTags: false,
    titleStyle: 'plain',
    ingestion: [['provider_api', 100]],
    links(n, r, who, name) {
      const id = String(200_000_000 + n);
      const h = hexWord(r, 2);
      return {
        foreignId: id,
        url: `https://upload.wikimedia.org/wikipedia/commons/${h.charAt(0)}/${h}/${encodeURIComponent(name.replace(/ /g, '_'))}_${id}.ogg`,
        thumbnail: null,
        landing: `https://commons.wikimedia.org/w/index.php?curid=${id}`,
        creatorUrl: r.chance(0.5) ? `https://commons.wikimedia.org/wiki/User:${who.slug}` : null,
      };
    },
  },
  {
    name: 'ccmixter',
    weight: 3,
    machineTags: false,
    titleStyle: 'plain',
    ingestion: [['provider_api', 100]],
    links(n, _r, who, name) {
      const id = String(100_000 + n);
      return {
        foreignId: id,
        url: `https://ccmixter.org/content/${who.slug}/${who.slug}_-_${slugify(name)}_${id}.mp3`,
        thumbnail: null,
        landing: `https://ccmixter.org/files/${who.slug}/${id}`,
        creatorUrl: `https://ccmixter.org/people/${who.slug}`,
      };
    },
  },
];

/** Whether a media type is audio-like (by name), which changes providers and a few columns. */
export function isAudioLike(media: string): boolean {
  return media.includes('audio');
}

/** The provider profiles for a media type (image-like ones for anything not audio). */
export function providerProfiles(media: string): Weighted<ProviderProfile> {
  const list = isAudioLike(media) ? audioProfiles : imageProfiles;
  return new Weighted(list.map((p) => [p, p.weight] as const));
}

/** Licenses with the sample's mix and version spellings. */
export const licenses = new Weighted<readonly [string, readonly string[]]>([
  [['by-sa', ['2', '2.0', '3', '4']], 25],
  [['by-nc-nd', ['2', '2.0', '3', '4']], 17],
  [['by', ['2', '2.0', '2.5', '3', '4']], 15],
  [['by-nc-sa', ['2', '2.0', '3', '4']], 13],
  [['cc0', ['1', '1.0']], 11],
  [['by-nc', ['2', '3', '4']], 8],
  [['by-nd', ['2', '3', '4']], 4],
  [['pdm', ['1', '1.0']], 1.5],
  [['sampling+', ['1.0']], 0.5],
]);

/** Clarifai-style machine tag names (a couple are on the image cleaning denylist). */
export const machineTagNames: readonly string[] = [
  'no person',
  'outdoors',
  'nature',
  'travel',
  'people',
  'adult',
  'one',
  'sky',
  'water',
  'landscape',
  'daylight',
  'architecture',
  'city',
  'portrait',
  'art',
  'sport',
  'competition',
  'street',
  'tree',
];

/** Flickr-style junk tags that the cleaning denylists reject (Openverse's tag rules). */
export const junkTagNames: readonly string[] = [
  'squareformat',
  'uploaded:by=flickrmobile',
  'flickriosapp:filter=nofilter',
  'cc0',
  'by-nc-sa',
];

/** A deterministic word for a unique-ised column: the same `n` always gives the same word. */
export function uniqueWord(n: number): string {
  return `${words[hash32(n) % words.length] as string}-${n.toString(36)}`;
}
