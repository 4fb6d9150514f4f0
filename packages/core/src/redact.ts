/** What stands in for a hidden secret. */
export const masked = '***';

/**
 * Query parameter names whose values are secrets: `password`, `sslpassword`, `passwd`, `pwd`,
 * `token`, `access_token`, `key`, `api_key`, `apikey`, `sslkey`, `secret`, `client_secret`,
 * `auth`, `signature`, `sig`, `credentials`... (ioredis and pg read a password from the query
 * string; other clients read tokens and keys there).
 */
const secretParam = /pass|pwd|token|secret|key|auth|sig|credential/i;

/**
 * A URL in a text: a scheme (or none: `://user:pw@host` is still someone's password), `//`,
 * then everything up to whitespace, a quote, a bracket or a comma that starts another URL (a
 * list of nodes: each is masked on its own, so each still says where).
 */
const urlInText =
  /(?:\b[a-z][a-z0-9+.-]*:)?\/\/(?:(?!,\s*[a-z][a-z0-9+.-]*:\/\/)[^\s"'<>()[\]{}`])*/gi;

function decoded(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/** Masks the password of the userinfo and the values of secret query parameters of one URL. */
function maskUrl(url: string): string {
  const slashes = url.indexOf('//') + 2;
  const scheme = url.slice(0, slashes);
  let rest = url.slice(slashes);
  // The userinfo ends at the LAST `@`: a password may hold an unescaped `@`, `/`, `?` or `#`
  // that a URL parser would cut it at (and print the rest). Masking too much is the safe side.
  const at = rest.lastIndexOf('@');
  let userinfo = '';
  if (at >= 0) {
    const info = rest.slice(0, at);
    const colon = info.indexOf(':');
    userinfo = `${colon >= 0 ? `${info.slice(0, colon)}:${masked}` : info}@`;
    rest = rest.slice(at + 1);
  }
  const query = rest.search(/[?#]/);
  if (query >= 0 && rest[query] === '?') {
    const head = rest.slice(0, query + 1);
    const hash = rest.indexOf('#', query);
    const tail = hash >= 0 ? rest.slice(hash) : '';
    const params = rest.slice(query + 1, hash >= 0 ? hash : undefined);
    const shown = params.replace(/([^&;=]*)=([^&;]*)/g, (pair, name: string) =>
      secretParam.test(decoded(name)) ? `${name}=${masked}` : pair,
    );
    rest = `${head}${shown}${tail}`;
  }
  return `${scheme}${userinfo}${rest}`;
}

/**
 * The one masking function for anything Freshet prints: every URL in `text` (a setting's value,
 * an error message quoting a connection string) with the password of its userinfo and the
 * values of its secret query parameters (`password=`, `sslpassword=`, `token=`, `key=`,
 * `secret=`...) replaced by `***`. The user name, host, port, path and other parameters stay,
 * so the message still says where. A password with an unescaped `@` or `/` is masked whole.
 */
export function maskSecrets(text: string): string {
  return text.replace(urlInText, maskUrl);
}
