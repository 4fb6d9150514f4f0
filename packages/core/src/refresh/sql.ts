/** Reads sensitive terms: one per line, blank lines and `#` comments ignored, lower-cased. */
export function parseSensitiveTerms(text: string): string[] {
  return [
    ...new Set(
      text
        .split(/\r?\n/)
        .map((l) => l.trim().toLowerCase())
        .filter((l) => l !== '' && !l.startsWith('#')),
    ),
  ];
}
