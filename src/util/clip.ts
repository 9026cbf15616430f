/**
 * A text cut to at most `max` characters, saying how much was cut: error texts travel in results whose schema
 * bounds them (4,096 characters), and a recorded line must always read back.
 */
export function clip(text: string, max = 2000): string {
  if (text.length <= max) return text;
  const tail = ` ... (${text.length} characters in all)`;
  return text.slice(0, Math.max(0, max - tail.length)) + tail;
}

/** Control characters, undecodable bytes (U+FFFD) and invisible or direction-changing code points. */
// deno-lint-ignore no-control-regex
const UNPRINTABLE = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff\ufffd]/g;

function escapeChar(c: string): string {
  const code = c.charCodeAt(0);
  return code < 0x100 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u{${code.toString(16)}}`;
}

/**
 * A text safe to print on a terminal: the characters of {@link UNPRINTABLE} are written as escapes (`\x1b`,
 * `\u{fffd}`), so that the bytes of a bad file cannot move the cursor, recolour or garble the terminal. Line
 * breaks and tabs stay.
 */
export function terminalSafe(text: string): string {
  return text.replace(UNPRINTABLE, escapeChar);
}

/**
 * A text fit for one terminal line: {@link terminalSafe}, line breaks and tabs escaped too, cut to about `max`
 * characters. For echoing the content of a bad file or argument in an error line.
 */
export function printable(text: string, max = 120): string {
  const escaped = terminalSafe(text).replace(/[\n\t]/g, escapeChar);
  return escaped.length <= max ? escaped : `${escaped.slice(0, max)}... (${text.length} characters)`;
}
