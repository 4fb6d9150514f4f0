/**
 * Openverse's current tag rules (catalog dags/data_refresh/alter_data.py, generate_tag_updates),
 * case by case, as catalog rows of tags: shared by the refresh test of the shipped definitions
 * (test/integration/openverse-tag-rules.test.ts) and the row rules' oracle test.
 */

/** What the shipped rules must do with one tag: keep it, or drop it for this reason. */
export type Fate = 'kept' | 'malformed' | 'low-accuracy' | 'denylisted-provider' | 'denylisted';

/** One catalog row's tags: each element with its fate, in order. */
export interface Case {
  readonly name: string;
  readonly tags: readonly (readonly [unknown, Fate])[];
}

const kept = (tag: unknown) => [tag, 'kept'] as const;
const drop = (tag: unknown, fate: Exclude<Fate, 'kept'>) => [tag, fate] as const;

/**
 * Openverse's current tag rules (catalog dags/data_refresh/alter_data.py, generate_tag_updates),
 * case by case: first Openverse's own test cases (test_alter_data.py, the same as the ingestion
 * server's test_cleanup.py), then every exact name, every substring, the provider, the accuracy
 * threshold and malformed tags, each with near misses Openverse keeps.
 */
export const openverseTagCases: Case[] = [
  // Openverse's test_generate_tag_updates cases.
  { name: 'openverse: a valid tag is unchanged', tags: [kept({ name: 'valid', accuracy: 0.92 })] },
  {
    name: 'openverse: denylisted tags are filtered',
    tags: [
      drop({ name: 'cc0' }, 'denylisted'),
      drop({ name: ' cc0' }, 'denylisted'),
      kept({ name: 'valid', accuracy: 0.99 }),
      kept({ name: 'valid_no_accuracy' }),
      drop({ name: 'garbage:=metacrap' }, 'denylisted'),
    ],
  },
  {
    name: 'openverse: inaccurate tags are filtered',
    tags: [
      drop({ name: 'inaccurate', accuracy: 0.5 }, 'low-accuracy'),
      kept({ name: 'accurate', accuracy: 0.999 }),
    ],
  },
  {
    name: 'openverse: tags from unvetted providers are filtered',
    tags: [
      kept({ name: 'valid', provider: 'provider1' }),
      drop({ name: 'invalid', provider: 'rekognition' }, 'denylisted-provider'),
    ],
  },
  // Exact names, compared lower-cased; a near miss is kept.
  ...[
    'no person',
    'squareformat',
    'uploaded:by=flickrmobile',
    'uploaded:by=instagram',
    'flickriosapp:filter=flamingo',
    'by',
  ].map((term) => ({
    name: `exact name ${JSON.stringify(term)}`,
    tags: [
      drop({ name: term }, 'denylisted'),
      drop({ name: term.toUpperCase(), provider: 'flickr' }, 'denylisted'),
      kept({ name: 'sunset' }),
    ],
  })),
  {
    name: 'near misses of the exact names are kept',
    tags: [
      kept({ name: 'person' }),
      kept({ name: 'no persons' }),
      kept({ name: 'square format' }),
      kept({ name: 'byzantine' }),
      kept({ name: 'abbey' }),
      kept({ name: 'nobody' }),
      kept({ name: 'by the sea' }),
      kept({ name: 'b y' }),
    ],
  },
  // Substrings, anywhere in the lower-cased name.
  ...(
    [
      ['flickriosapp', 'FlickrIOSApp rocks'],
      ['uploaded', 'photo Uploaded today'],
      [':', 'geo:lat'],
      ['=', 'a=b'],
      ['cc0', 'CC0 public domain'],
      ['by-nc', 'license by-nc 2.0'],
      ['by-nd', 'BY-ND'],
      ['by-sa', 'cc-by-sa-3.0'],
      ['by-nc-nd', 'By-Nc-Nd'],
      ['by-nc-sa', 'by-nc-sa'],
      ['pdm', 'pdm'],
    ] as const
  ).map(([term, name]) => ({
    name: `substring ${JSON.stringify(term)}`,
    tags: [drop({ name, accuracy: 0.95 }, 'denylisted'), kept({ name: 'mountain', accuracy: 1 })],
  })),
  {
    name: 'near misses of the substrings are kept',
    tags: [
      kept({ name: 'upload' }),
      kept({ name: 'cc 0' }),
      kept({ name: 'by nc' }),
      kept({ name: 'by_sa' }),
      kept({ name: 'pd m' }),
      kept({ name: 'flickr ios app' }),
    ],
  },
  // Providers: exactly "rekognition", case-sensitive as in Openverse.
  {
    name: 'the rekognition provider',
    tags: [
      drop({ name: 'dog', accuracy: 0.99, provider: 'rekognition' }, 'denylisted-provider'),
      kept({ name: 'dog', accuracy: 0.99, provider: 'Rekognition' }),
      kept({ name: 'dog', accuracy: 0.99, provider: 'clarifai' }),
      kept({ name: 'cat', provider: 'rekognition-v2' }),
    ],
  },
  // Accuracy: below 0.90 is dropped; 0.90 itself and a tag without one are kept.
  {
    name: 'the accuracy threshold',
    tags: [
      kept({ name: 'at threshold', accuracy: 0.9 }),
      drop({ name: 'just below', accuracy: 0.8999 }, 'low-accuracy'),
      drop({ name: 'zero', accuracy: 0 }, 'low-accuracy'),
      drop({ name: 'negative', accuracy: -1 }, 'low-accuracy'),
      drop({ name: 'as a string', accuracy: '0.5' }, 'low-accuracy'),
      kept({ name: 'string above', accuracy: '0.95' }),
      kept({ name: 'one', accuracy: 1 }),
      kept({ name: 'none' }),
      kept({ name: 'null accuracy', accuracy: null }),
    ],
  },
  // Malformed: no string name (the element not even an object).
  {
    name: 'malformed tags',
    tags: [
      drop({ accuracy: 0.99 }, 'malformed'),
      drop({ name: 5 }, 'malformed'),
      drop({ name: null }, 'malformed'),
      drop({ name: ['a'] }, 'malformed'),
      drop({ name: { en: 'a' } }, 'malformed'),
      drop('a bare string', 'malformed'),
      drop(7, 'malformed'),
      drop(null, 'malformed'),
      kept({ name: '' }),
      kept({ name: 'fine', extra: { nested: [1, 2] } }),
    ],
  },
  // Rules are applied in Openverse's order: a malformed or inaccurate tag is counted as that.
  {
    name: 'the first rule that matches names the reason',
    tags: [
      drop({ name: 'cc0', accuracy: 0.1 }, 'low-accuracy'),
      drop({ name: 'cc0', provider: 'rekognition' }, 'denylisted-provider'),
      drop({ name: 'by', accuracy: 0.5, provider: 'rekognition' }, 'low-accuracy'),
    ],
  },
];
