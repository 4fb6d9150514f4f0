/**
 * Small, fast, seeded pseudo-random numbers for synthetic catalog rows. Nothing here is
 * cryptographic: the point is that the same seed always gives the same rows.
 */

/** A seeded source of pseudo-random values. */
export interface Random {
  /** A float in [0, 1). */
  next(): number;
  /** An unsigned 32-bit integer. */
  uint32(): number;
  /** An integer in [min, max] (both inclusive). */
  int(min: number, max: number): number;
  /** True with probability `p` (0..1). */
  chance(p: number): boolean;
  /** One element of a non-empty list, uniformly. */
  pick<T>(items: readonly T[]): T;
  /** A version-4 UUID built from four draws. */
  uuid(): string;
}

/** Largest seed accepted: seeds are unsigned 32-bit integers. */
export const maxSeed = 0xffff_ffff;

/**
 * A 32-bit integer hash (the "lowbias32" finalizer): a bijection on [0, 2^32), so distinct
 * inputs always give distinct outputs while nearby inputs look unrelated.
 */
export function hash32(value: number): number {
  let x = value >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

const hex: readonly string[] = Array.from({ length: 256 }, (_, i) =>
  i.toString(16).padStart(2, '0'),
);

function hex32(x: number): string {
  return (
    (hex[(x >>> 24) & 0xff] as string) +
    (hex[(x >>> 16) & 0xff] as string) +
    (hex[(x >>> 8) & 0xff] as string) +
    (hex[x & 0xff] as string)
  );
}

/**
 * sfc32 (Chris Doty-Humphrey's Small Fast Counting generator, 128-bit state), seeded from one
 * or two 32-bit words. Two different `(seed, stream)` pairs always start from different states,
 * so per-row streams never repeat one another. A class rather than closures: one is created per
 * generated row.
 */
class Sfc32 implements Random {
  private a: number;
  private b: number;
  private c: number;
  private d = 1;

  constructor(seed: number, stream: number) {
    this.a = hash32(seed ^ 0x9e3779b9);
    this.b = hash32((stream ^ 0x85ebca6b) >>> 0);
    this.c = hash32((this.a ^ this.b ^ 0xc2b2ae35) >>> 0);
    // The first outputs of sfc32 still show the seed's structure; skip them.
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  next(): number {
    return this.uint32() / 4294967296;
  }

  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }

  uuid(): string {
    const w1 = this.uint32();
    const w2 = ((this.uint32() & 0xffff0fff) | 0x00004000) >>> 0;
    const w3 = ((this.uint32() & 0x3fffffff) | 0x80000000) >>> 0;
    const w4 = this.uint32();
    const s2 = hex32(w2);
    const s3 = hex32(w3);
    return `${hex32(w1)}-${s2.slice(0, 4)}-${s2.slice(4)}-${s3.slice(0, 4)}-${s3.slice(4)}${hex32(w4)}`;
  }
}

/** A seeded generator; `stream` selects an independent sequence for the same seed (e.g. a row). */
export function createRandom(seed: number, stream = 0): Random {
  return new Sfc32(seed, stream);
}

/** A list of values with relative weights, for draws that follow a real distribution. */
export class Weighted<T> {
  private readonly cumulative: number[] = [];
  private readonly total: number;

  constructor(private readonly entries: readonly (readonly [T, number])[]) {
    let sum = 0;
    for (const [, weight] of entries) {
      sum += weight;
      this.cumulative.push(sum);
    }
    if (entries.length === 0 || sum <= 0)
      throw new Error('a weighted list needs a positive weight');
    this.total = sum;
  }

  /** One value, drawn with probability proportional to its weight. */
  draw(random: Random): T {
    const target = random.next() * this.total;
    for (let i = 0; i < this.cumulative.length; i++) {
      if (target < (this.cumulative[i] as number))
        return (this.entries[i] as readonly [T, number])[0];
    }
    return (this.entries[this.entries.length - 1] as readonly [T, number])[0];
  }
}
