/**
 * Keeping passwords out of messages: every URL a message or a log line shows
 * goes through {@link redactUrl}, and URL parsers refuse, with
 * {@link unencodedUserinfo}, user info whose password holds a character that
 * must be percent-encoded there, before any part of it could be mistaken for
 * a host, a port or a query and quoted in an error.
 *
 * @module
 */

/**
 * The URL with its password replaced by `***` (`redis://app:***@host:6379`),
 * for messages and logs. The password runs to the URL's last `@`, so one with
 * characters that should have been percent-encoded (`#`, `?`, `/`, `@`) is
 * hidden whole too; so is the value of any query parameter whose name ends in
 * `password` (Redis's `sentinelPassword`). A URL without one is returned as
 * it is.
 */
export function redactUrl(url: string): string {
  return redactUserinfo(url).replace(/([?&][^=&#]*password=)[^&#]*/gi, '$1***');
}

function redactUserinfo(url: string): string {
  // scheme://user:… or scheme:/user:… (a malformed one is shown in errors too)
  const withScheme = url.replace(/^([\s\S]*?:\/{1,2}[^:@/?#]*:)[\s\S]*@/, '$1***@');
  if (withScheme !== url || !url.includes('@') || url.includes(':/')) return withScheme;
  // user:password@host without a scheme
  return url.replace(/^([^:@/]*:)[\s\S]*@/, '$1***@');
}

/**
 * Why the URL's user info (up to its last `@`) cannot be read as written, or
 * `undefined` when it can: a `/`, `?` or `#` there must be percent-encoded
 * (`%2F`, `%3F`, `%23`), else the URL would be cut at it. (An `@` in a query
 * parameter must be encoded too, as `%40`; one in the password splits at the
 * last `@`, but `%40` is safer.)
 */
export function unencodedUserinfo(url: string): string | undefined {
  const userinfo = /^\s*[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([\s\S]*)@/.exec(url)?.[1];
  if (userinfo === undefined || !/[/?#]/.test(userinfo)) return undefined;
  return 'a password with "/", "?", "#" and "@" percent-encoded (%2F, %3F, %23, %40; an "@" in a query parameter as %40), e.g. "redis://app:pa%23ss@host:6379"';
}
