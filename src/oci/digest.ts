// Content digests. Only sha256 is accepted: a digest is validated before it is ever used to
// build a path, so "sha256:../../etc" can never escape the cache or a layout directory.
import { OciError } from "./errors.ts";

const DIGEST_RE = /^sha256:[0-9a-f]{64}$/;

export function isDigest(text: string): boolean {
  return DIGEST_RE.test(text);
}

/** Returns the digest unchanged, or throws naming where it came from. */
export function checkDigest(text: unknown, where: string): string {
  if (typeof text !== "string" || !DIGEST_RE.test(text)) {
    const shown = typeof text === "string" ? JSON.stringify(text.slice(0, 100)) : String(text);
    throw new OciError(`invalid digest ${shown} in ${where}: expected sha256: followed by 64 lowercase hex digits`);
  }
  return text;
}

/** The 64 hex digits of a validated digest. */
export function digestHex(digest: string): string {
  checkDigest(digest, "digest");
  return digest.slice("sha256:".length);
}

export function sha256Digest(data: Uint8Array | string): string {
  return "sha256:" + new Bun.CryptoHasher("sha256").update(data).digest("hex");
}

/** Incremental sha256 that can be fed while streaming. */
export class DigestWriter {
  private hasher = new Bun.CryptoHasher("sha256");
  bytes = 0;
  update(chunk: Uint8Array): void {
    this.hasher.update(chunk);
    this.bytes += chunk.length;
  }
  digest(): string {
    return "sha256:" + this.hasher.digest("hex");
  }
}
