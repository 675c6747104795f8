// Byte-string helpers: names and paths in the tree are JS strings with one char per byte.

const utf8Decoder = new TextDecoder("utf-8", { fatal: false });

export function nameToBytes(name: string): Uint8Array {
  return Buffer.from(name, "latin1");
}

export function bytesToName(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** Names longer than this many bytes are shown shortened: their head and tail, and the count elided. */
export const DISPLAY_MAX_BYTES = 320;
const DISPLAY_HEAD_BYTES = 192;
const DISPLAY_TAIL_BYTES = 96;

/** Printable ASCII other than the backslash: shown as is (the common case, checked first). */
const PLAIN = /^[\x20-\x5b\x5d-\x7e]*$/;

/**
 * Human-readable form of a byte-string name or path, for error messages and listings: always
 * one line of bounded length, safe to print to a terminal. Names come from archives that may be
 * hostile: UTF-8 is decoded (invalid bytes become U+FFFD), control characters are escaped (\n,
 * \x1b, \u0085, ...) so none can split a message or drive the terminal, a backslash is doubled
 * so an escape is never ambiguous, and a name over DISPLAY_MAX_BYTES keeps its head and tail with
 * the number of bytes elided between them.
 */
export function displayName(name: string): string {
  if (name.length <= DISPLAY_MAX_BYTES && PLAIN.test(name)) return name;
  if (name.length <= DISPLAY_MAX_BYTES) return escapeControls(utf8Decoder.decode(nameToBytes(name)));
  // Cut at UTF-8 character boundaries: never inside a multi-byte sequence (continuation bytes 0x80-0xbf).
  let headEnd = DISPLAY_HEAD_BYTES;
  while (headEnd > 0 && isContinuation(name.charCodeAt(headEnd))) headEnd--;
  let tailStart = name.length - DISPLAY_TAIL_BYTES;
  while (tailStart < name.length && isContinuation(name.charCodeAt(tailStart))) tailStart++;
  const head = escapeControls(utf8Decoder.decode(nameToBytes(name.slice(0, headEnd))));
  const tail = escapeControls(utf8Decoder.decode(nameToBytes(name.slice(tailStart))));
  return `${head}...[${tailStart - headEnd} bytes elided]...${tail}`;
}

function isContinuation(byte: number): boolean {
  return byte >= 0x80 && byte <= 0xbf;
}

const SHORT_ESCAPES: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\" };

/**
 * Text with every control character escaped: C0 and DEL as \n, \r, \t or \xHH, C1 and the
 * Unicode line/paragraph separators and bidirectional overrides (which reorder what a terminal
 * shows) as \uHHHH; backslashes doubled. The result is one line whatever the input.
 */
export function escapeControls(text: string): string {
  return text.replace(/[\x00-\x1f\x7f-\x9f\\\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, escapeOne);
}

function escapeOne(c: string): string {
  const short = SHORT_ESCAPES[c];
  if (short !== undefined) return short;
  const code = c.charCodeAt(0);
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/**
 * A message made safe to print as one line: control characters escaped as escapeControls does
 * (but backslashes kept: names in it are already escaped), and text over `maxChars` shortened to
 * its head and tail. The last safety net where errors are printed, for text that did not come
 * through displayName.
 */
export function oneLine(text: string, maxChars = 4096): string {
  let out = text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, escapeOne);
  if (out.length > maxChars) {
    const head = Math.floor(maxChars * 0.6);
    const tail = maxChars - head;
    out = `${out.slice(0, head)}...[${out.length - head - tail} characters elided]...${out.slice(out.length - tail)}`;
  }
  return out;
}

/** Converts an ordinary (UTF-16) JS string, e.g. from the command line, to a byte string. */
export function utf8ToName(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}
