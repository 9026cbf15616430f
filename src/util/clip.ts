/**
 * A text cut to at most `max` characters, saying how much was cut: error texts travel in results whose schema
 * bounds them (4,096 characters), and a recorded line must always read back.
 */
export function clip(text: string, max = 2000): string {
  if (text.length <= max) return text;
  const tail = ` ... (${text.length} characters in all)`;
  return text.slice(0, Math.max(0, max - tail.length)) + tail;
}
