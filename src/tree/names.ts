// Byte-string helpers: names and paths in the tree are JS strings with one char per byte.

const utf8Decoder = new TextDecoder("utf-8", { fatal: false });

export function nameToBytes(name: string): Uint8Array {
  return Buffer.from(name, "latin1");
}

export function bytesToName(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/** Human-readable form of a byte-string name or path, for error messages and listings. */
export function displayName(name: string): string {
  return utf8Decoder.decode(nameToBytes(name));
}

/** Converts an ordinary (UTF-16) JS string, e.g. from the command line, to a byte string. */
export function utf8ToName(text: string): string {
  return Buffer.from(text, "utf8").toString("latin1");
}
