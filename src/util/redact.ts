/**
 * A text with the secrets of broker URLs hidden: the password of `nats://user:secret@host` (also `tls://`,
 * `ws://`, `wss://` and `user:secret@host:port` without a scheme) becomes `user:***@host`, and the token of
 * `nats://token@host` becomes `***@host`. For every line that may print a URL a user gave.
 */
export function redactCredentials(text: string): string {
  return text
    .replace(/\b((?:nats|tls|ws|wss):\/\/)([^\s/@,'"]+)@/gi, (_, scheme: string, info: string) => {
      const colon = info.indexOf(":");
      return `${scheme}${colon < 0 ? "***" : `${info.slice(0, colon)}:***`}@`;
    })
    .replace(/(^|[\s,'"(=])([^\s/@:,'"()=]+):(?!\*\*\*@)[^\s/@,'"()]+@(?=[^\s@])/g, "$1$2:***@");
}

/** A broker URL (or comma-separated list) without its user, password or token: `nats://host:4222`. */
export function withoutCredentials(urls: string): string {
  return urls.split(",").map((u) => u.replace(/^((?:[a-z]+:\/\/)?)[^\s/@]+@/i, "$1")).join(",");
}
