/**
 * A text with the secrets of broker URLs hidden: the password of `nats://user:secret@host` (any scheme, and
 * `user:secret@host:port` without one) becomes `user:***@host`, and the token of `nats://token@host` (or
 * `token@host:port`) becomes `***@host`. For every line that may print a URL a user gave.
 */
export function redactCredentials(text: string): string {
  return text
    // any scheme (http:// too, in the refusal of a wrong one); up to the last @ (a password with ' or @ in it)
    .replace(
      /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/,]+)@/gi,
      (_, scheme: string, info: string) => `${scheme}${hidden(info)}@`,
    )
    .replace(/(^|[\s,'"(=])([^\s/@:,'"()=]+):(?!\*\*\*@)[^\s/@,'"()]+@(?=[^\s@])/g, "$1$2:***@")
    // a token without a scheme (`tok@host:4222`): before a host and port only, not an e-mail address
    .replace(/(^|[\s,'"(=])(?!\*\*\*@)[^\s/@:,'"()=]+@(?=(?:\[[0-9a-f:.]+\]|[\w.-]+):\d+\b)/gi, "$1***@");
}

/** `user:***` for `user:secret`, `***` for a token. */
function hidden(info: string): string {
  const colon = info.indexOf(":");
  return colon < 0 ? "***" : `${info.slice(0, colon)}:***`;
}

/**
 * Broker URLs as a line may print them: each comma-separated URL's user info, up to its last @ (a password
 * may hold any character), becomes `user:***` or `***` (a token).
 */
export function maskedUrls(urls: string): string {
  return urls.split(",").map((u) =>
    u.replace(
      /^(\s*(?:[a-z][a-z0-9+.-]*:\/\/)?)(.*)@/is,
      (_, scheme: string, info: string) => `${scheme}${hidden(info)}@`,
    )
  ).join(",");
}

/** A broker URL (or comma-separated list) without its user, password or token: `nats://host:4222`. */
export function withoutCredentials(urls: string): string {
  return urls.split(",").map((u) => u.replace(/^((?:[a-z]+:\/\/)?)[^\s/@]+@/i, "$1")).join(",");
}
