// A file downloaded over HTTP(S) and verified against a sha256 and a size while it streams:
// bundles and kernels from a catalog. It lands in `<dest>.partial` first; a download cut short
// (network, Ctrl-C, a killed process) resumes from there with a Range request, re-hashing the
// part already on disk, then hashing each piece as it arrives (the file is not read again).
// Only a complete file with the right digest is renamed to `dest`.
import fs from "node:fs";
import { OciError, errorText } from "./errors.ts";
import { DEFAULT_RETRY, retryDelay, sendWithRetry, sleep, type RetryPolicy } from "./http.ts";

export interface DownloadOptions {
  sha256: string;
  size: number;
  signal?: AbortSignal;
  /** Bytes on disk so far (resumed bytes included) and the total. */
  progress?: (done: number, total: number) => void;
  /** A try failed and another follows after a pause: why, and the bytes kept for it to resume from. */
  retrying?: (reason: string, done: number) => void;
  retry?: RetryPolicy;
  /** For messages, e.g. 'image "debian" (catalog)'. */
  what: string;
}

export class DownloadError extends OciError {
  override name = "DownloadError";
}

export function partialPath(dest: string): string {
  return `${dest}.partial`;
}

/** Downloads `url` to `dest` (verified), resuming a `.partial` left by an earlier try. */
export async function downloadVerified(url: string, dest: string, opts: DownloadOptions): Promise<void> {
  const policy = opts.retry ?? DEFAULT_RETRY;
  const part = partialPath(dest);
  let got: string;
  for (let attempt = 0; ; attempt++) {
    try {
      got = await downloadOnce(url, part, opts);
      break;
    } catch (err) {
      // A wrong digest or size, a refusal (4xx): retrying would get the same, and what is on
      // disk cannot be trusted to resume from.
      if (err instanceof DownloadError) fs.rmSync(part, { force: true });
      if (err instanceof DownloadError || opts.signal?.aborted || attempt >= policy.retries) throw err;
      opts.retrying?.(errorText(err), partialSize(part));
      await sleep(retryDelay(attempt + 1, policy), opts.signal);
    }
  }
  if (got !== opts.sha256) {
    fs.rmSync(part, { force: true });
    throw new DownloadError(`${opts.what}: ${url} has sha256 ${got}, the catalog says ${opts.sha256}; the download was discarded`);
  }
  fs.renameSync(part, dest);
}

function partialSize(part: string): number {
  try {
    return fs.statSync(part).size;
  } catch {
    return 0;
  }
}

/** Feeds the first `length` bytes of `file` to `h`: what an earlier try left, before the rest streams in. */
function hashPrefix(file: string, length: number, h: Bun.CryptoHasher): void {
  const fd = fs.openSync(file, "r");
  try {
    const buf = new Uint8Array(1 << 20);
    for (let pos = 0; pos < length; ) {
      const n = fs.readSync(fd, buf, 0, Math.min(buf.length, length - pos), pos);
      if (n <= 0) throw new OciError(`${file}: ends at byte ${pos}, expected ${length}`);
      h.update(buf.subarray(0, n));
      pos += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

/** One try: the rest of the file appended to the partial, hashed as it arrives. Returns the whole file's sha256 (hex). */
async function downloadOnce(url: string, part: string, opts: DownloadOptions): Promise<string> {
  let have = partialSize(part);
  if (have > opts.size) {
    fs.rmSync(part, { force: true });
    have = 0;
  }
  let hash = new Bun.CryptoHasher("sha256");
  if (have > 0) hashPrefix(part, have, hash);
  if (have === opts.size) return hash.digest("hex");
  const res = await sendWithRetry(url, { signal: opts.signal, headers: have > 0 ? { range: `bytes=${have}-` } : {} }, { ...DEFAULT_RETRY, retries: 0 });
  if (res.status === 200 && have > 0) {
    // The server ignored the Range: start over.
    have = 0;
    hash = new Bun.CryptoHasher("sha256");
  } else if (res.status === 206 && Number(/^bytes (\d+)-/.exec(res.headers["content-range"] ?? "")?.[1]) !== have) {
    // A part from elsewhere in the file would be appended at the wrong place: start over.
    res.discard();
    fs.rmSync(part, { force: true });
    throw new OciError(`${opts.what}: GET ${url} answered a Range request for byte ${have} with ${res.headers["content-range"] ?? "no Content-Range"}`);
  } else if (res.status !== 200 && res.status !== 206) {
    res.discard();
    const msg = `${opts.what}: GET ${url} answered HTTP ${res.status}`;
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) throw new DownloadError(msg);
    throw new OciError(msg);
  }
  const fd = fs.openSync(part, have > 0 ? "r+" : "w", 0o644);
  try {
    if (have === 0) fs.ftruncateSync(fd, 0);
    let pos = have;
    opts.progress?.(pos, opts.size);
    for await (const chunk of res.body) {
      if (pos + chunk.length > opts.size) throw new DownloadError(`${opts.what}: ${url} is larger than the catalog's ${opts.size} bytes`);
      for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off, chunk.length - off, pos + off);
      hash.update(chunk);
      pos += chunk.length;
      opts.progress?.(pos, opts.size);
    }
    if (pos < opts.size) throw new OciError(`${opts.what}: ${url} ended at ${pos} of ${opts.size} bytes`);
    return hash.digest("hex");
  } catch (err) {
    if (err instanceof OciError) throw err;
    // Bun's fetch adds a hint about its `verbose` option to network errors: noise in a one-line message.
    throw new OciError(`${opts.what}: downloading ${url}: ${errorText(err).replace(/ For more information, pass `verbose: true`.*$/s, "")}`, { cause: err });
  } finally {
    fs.closeSync(fd);
  }
}
