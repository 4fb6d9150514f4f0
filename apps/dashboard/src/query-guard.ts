import type { NextFunction, Request, Response } from 'express';

/** True if `text` holds a C0 or C1 control character or DEL: never meaningful in a filter. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

function decodeComponent(text: string): string {
  return decodeURIComponent(text.replace(/\+/g, ' '));
}

/**
 * The problem with a query string, or undefined: a malformed percent-escape, or a name or
 * value holding a control character (NUL included: PostgreSQL cannot take one in text, and
 * Bull Board's Redis scripts choke on it).
 */
export function queryProblem(url: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  for (const pair of url.slice(q + 1).split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    let name: string;
    let value: string;
    try {
      name = decodeComponent(eq < 0 ? pair : pair.slice(0, eq));
      value = eq < 0 ? '' : decodeComponent(pair.slice(eq + 1));
    } catch {
      return 'the query string has a malformed percent-escape (like %zz or a broken UTF-8 sequence)';
    }
    if (hasControlCharacter(name) || hasControlCharacter(value)) {
      return `query parameter ${JSON.stringify(name)} holds a control character; send printable text`;
    }
  }
  return undefined;
}

/** Answers 400 to a request whose query string {@link queryProblem} refuses. */
export function rejectBadQuery() {
  return (req: Request, res: Response, next: NextFunction): void => {
    const problem = queryProblem(req.originalUrl);
    if (problem) {
      res.status(400).json({ error: problem });
      return;
    }
    next();
  };
}
