// HTTP for registries, on undici's request API. Under Bun, `undici` resolves to Bun's built-in
// shim of that API (backed by Bun's fetch): request/response streaming works; Agent/dispatcher
// tuning is accepted but ignored, so parallelism is bounded by our own pool instead.
//
// Here: manual redirects (Authorization is dropped once a redirect leaves the registry's
// origin) and retries of 429/5xx and network failures with exponential backoff that honours
// Retry-After.
import { OciError, errorText } from "./errors.ts";

export interface HttpResponse {
  status: number;
  headers: Record<string, string>;
  /** Final URL after redirects. */
  url: string;
  body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  bytes(): Promise<Uint8Array>;
  /** Releases the connection without reading the rest. */
  discard(): void;
}

export interface RetryPolicy {
  /** Further attempts after the first. */
  retries: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Retry-After values above this are cut down to it. */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 500, maxDelayMs: 15_000, maxRetryAfterMs: 60_000 };

export interface SendOptions {
  method?: "GET" | "HEAD" | "POST" | "PUT";
  headers?: Record<string, string>;
  /** A request body held in memory (pushes: a bundle blob, a manifest). */
  body?: string | Uint8Array;
  signal?: AbortSignal;
  /** Origin that may receive the Authorization header; redirects elsewhere lose it. */
  trustedOrigin?: string;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });

function flatHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

/** One request, following redirects by hand. */
export async function send(url: string, opts: SendOptions = {}): Promise<HttpResponse> {
  let current = url;
  let method = opts.method ?? "GET";
  let body = opts.body;
  const headers = { ...(opts.headers ?? {}) };
  // Loaded on the first request: a pull from a local layout or archive never pays for it (~8 ms).
  const { request } = await import("undici");
  for (let hop = 0; ; hop++) {
    const res = await request(current, { method, headers, body, signal: opts.signal }).catch((err: unknown) => {
      throw new OciError(`${method} ${current}: ${errorText(err)}`, { url: current, cause: err });
    });
    const h = flatHeaders(res.headers as Record<string, string | string[] | undefined>);
    if (REDIRECTS.has(res.statusCode) && h.location) {
      res.body.destroy();
      if (hop >= 10) throw new OciError(`${url}: more than 10 redirects`, { url });
      const next = new URL(h.location, current);
      if (next.protocol !== "https:" && next.protocol !== "http:") throw new OciError(`${current}: redirect to unsupported URL ${next.href}`, { url: current });
      if (opts.trustedOrigin === undefined || next.origin !== opts.trustedOrigin) {
        delete headers.authorization;
        delete headers.Authorization;
      }
      if (res.statusCode === 303) {
        method = "GET";
        body = undefined;
      }
      current = next.href;
      continue;
    }
    const b = res.body;
    return {
      status: res.statusCode,
      headers: h,
      url: current,
      body: b as AsyncIterable<Uint8Array>,
      text: () => b.text(),
      bytes: async () => new Uint8Array(await b.arrayBuffer()),
      discard: () => b.destroy(),
    };
  }
}

/** Delay before retry `attempt` (1-based): Retry-After when given, else jittered exponential backoff. */
export function retryDelay(attempt: number, policy: RetryPolicy, retryAfter?: string): number {
  if (retryAfter) {
    const secs = Number(retryAfter);
    let ms = Number.isFinite(secs) ? secs * 1000 : Date.parse(retryAfter) - Date.now();
    if (Number.isFinite(ms)) return Math.min(Math.max(ms, 0), policy.maxRetryAfterMs);
  }
  const exp = Math.min(policy.baseDelayMs * 2 ** (attempt - 1), policy.maxDelayMs);
  return exp / 2 + Math.random() * (exp / 2);
}

/**
 * Sends with retries: network errors, 408, 429 and 5xx are retried; anything else (and the
 * last retryable answer) is returned for the caller to interpret.
 */
export async function sendWithRetry(url: string, opts: SendOptions, policy: RetryPolicy): Promise<HttpResponse> {
  for (let attempt = 0; ; attempt++) {
    let res: HttpResponse;
    try {
      res = await send(url, opts);
    } catch (err) {
      if (opts.signal?.aborted || attempt >= policy.retries) throw err;
      await sleep(retryDelay(attempt + 1, policy), opts.signal);
      continue;
    }
    if (!RETRYABLE.has(res.status) || attempt >= policy.retries) return res;
    res.discard();
    await sleep(retryDelay(attempt + 1, policy, res.headers["retry-after"]), opts.signal);
  }
}
