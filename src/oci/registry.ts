// Registry client (distribution API v2): manifests and blobs of one repository, with auth,
// retries and clear errors. Blob bytes are handed back as a stream; storing and verifying
// them is the cache's job (see pull.ts).
import { Authenticator } from "./auth.ts";
import type { CredentialLookup } from "./credentials.ts";

import { OciAuthError, OciDigestMismatchError, OciError, OciNotFoundError } from "./errors.ts";
import { DEFAULT_RETRY, sendWithRetry, type HttpResponse, type RetryPolicy } from "./http.ts";
import { MANIFEST_ACCEPT } from "./media-types.ts";
import { isDigest, sha256Digest } from "./digest.ts";
import { formatReference, registryBaseUrl, type Reference } from "./reference.ts";

export interface RegistryClientOptions {
  credentials?: CredentialLookup;
  /** Registries (host[:port]) to speak plain HTTP to although they are not loopback. */
  insecureRegistries?: string[];
  retry?: Partial<RetryPolicy>;
  userAgent?: string;
  signal?: AbortSignal;
}

export interface FetchedManifest {
  bytes: Uint8Array;
  contentType: string;
  digest: string;
  url: string;
}

export interface BlobResponse {
  /** Offset of the first byte of `body` in the blob (0 when the server ignored our Range). */
  start: number;
  body: AsyncIterable<Uint8Array>;
  url: string;
  discard(): void;
}

interface RegistryErrorBody {
  errors?: { code?: string; message?: string }[];
}

async function errorSummary(res: HttpResponse): Promise<{ codes: string[]; text: string }> {
  const raw = (await res.text().catch(() => "")).slice(0, 2000);
  try {
    const o = JSON.parse(raw) as RegistryErrorBody;
    if (Array.isArray(o.errors) && o.errors.length) {
      return { codes: o.errors.map((e) => e.code ?? ""), text: o.errors.map((e) => [e.code, e.message].filter(Boolean).join(": ")).join("; ") };
    }
  } catch {}
  return { codes: [], text: raw.trim().slice(0, 300) };
}

export class RegistryClient {
  readonly policy: RetryPolicy;
  private auth: Authenticator;
  private readonly insecure: string[];
  private readonly userAgent: string;

  constructor(private readonly opts: RegistryClientOptions = {}) {
    this.policy = { ...DEFAULT_RETRY, ...(opts.retry ?? {}) };
    this.insecure = opts.insecureRegistries ?? [];
    this.userAgent = opts.userAgent ?? "banger";
    this.auth = new Authenticator(opts.credentials, this.policy, this.insecure, this.userAgent);
  }

  private base(ref: Reference): string {
    return registryBaseUrl(ref.registry, this.insecure);
  }

  /** GET under /v2/<repository>/, answering one auth challenge; returns whatever came last. */
  private get(ref: Reference, pathTail: string, headers: Record<string, string>): Promise<HttpResponse> {
    return this.call(ref, `${this.base(ref)}/v2/${ref.repository}/${pathTail}`, { method: "GET", headers }, "pull");
  }

  /** A request to the registry with the pull (or pull+push) scope's credentials, answering one auth challenge. */
  private async call(ref: Reference, url: string, req: { method: "GET" | "HEAD" | "POST" | "PUT"; headers: Record<string, string>; body?: Uint8Array | string }, access: "pull" | "push"): Promise<HttpResponse> {
    const origin = new URL(this.base(ref)).origin;
    const scope = `repository:${ref.repository}:${access === "push" ? "pull,push" : "pull"}`;
    for (let round = 0; ; round++) {
      const h: Record<string, string> = { "user-agent": this.userAgent, ...req.headers };
      const authz = this.auth.cached(ref.registry, scope);
      if (authz) h.authorization = authz;
      const res = await sendWithRetry(url, { method: req.method, headers: h, body: req.body, signal: this.opts.signal, trustedOrigin: origin }, this.policy);
      const fromRegistry = new URL(res.url).origin === origin;
      if (res.status === 401 && fromRegistry && round === 0) {
        res.discard();
        this.auth.forget(ref.registry, scope);
        await this.auth.answer(ref.registry, scope, res.headers["www-authenticate"], url, this.opts.signal);
        continue;
      }
      if ((res.status === 401 || res.status === 403) && fromRegistry) {
        const { text } = await errorSummary(res);
        const cred = await this.auth.credentials(ref.registry);
        const who = cred ? `the credentials from ${cred.source}` : "anonymous access";
        const verb = res.status === 401 ? "rejected" : "denied access to";
        const hint = cred ? "" : `; if it is private, run \`docker login ${ref.registry}\``;
        throw new OciAuthError(`${url}: registry ${ref.registry} ${verb} ${who} for repository ${ref.repository} (HTTP ${res.status}${text ? ": " + text : ""})${hint}`, {
          url,
          reference: formatReference(ref),
          status: res.status,
        });
      }
      return res;
    }
  }

  /** True when the repository exists (used to tell "no such repository" from "no such tag"). */
  private async repositoryExists(ref: Reference): Promise<boolean | undefined> {
    try {
      const res = await this.get(ref, "tags/list?n=1", { accept: "application/json" });
      const { codes } = res.status === 200 ? (res.discard(), { codes: [] as string[] }) : await errorSummary(res);
      if (res.status === 200) return true;
      if (res.status === 404 && codes.includes("NAME_UNKNOWN")) return false;
      return undefined;
    } catch {
      return undefined;
    }
  }

  /** Fetches a manifest or index by tag or digest; the digest is computed from the bytes and checked when pinned. */
  async fetchManifest(ref: Reference, target: string): Promise<FetchedManifest> {
    const refText = formatReference(ref);
    const res = await this.get(ref, `manifests/${target}`, { accept: MANIFEST_ACCEPT });
    const url = res.url;
    if (res.status === 404) {
      const { codes, text } = await errorSummary(res);
      const exists = codes.includes("NAME_UNKNOWN") ? false : await this.repositoryExists(ref);
      if (exists === false) {
        throw new OciNotFoundError(`${refText}: repository "${ref.repository}" not found on registry ${ref.registry} (${url}: HTTP 404)`, { reference: refText, url, status: 404 });
      }
      const what = isDigest(target) ? `manifest ${target}` : `tag "${target}"`;
      throw new OciNotFoundError(`${refText}: ${what} not found in repository ${ref.registry}/${ref.repository} (${url}: HTTP 404${text ? ": " + text : ""})`, {
        reference: refText,
        url,
        status: 404,
      });
    }
    if (res.status !== 200) {
      const { text } = await errorSummary(res);
      throw new OciError(`${refText}: fetching manifest from ${url} failed: HTTP ${res.status}${text ? ": " + text : ""}`, { reference: refText, url, status: res.status });
    }
    const bytes = await res.bytes();
    if (bytes.length > 4 * 1024 * 1024) throw new OciError(`${refText}: manifest at ${url} is larger than 4 MiB`, { reference: refText, url });
    const digest = sha256Digest(bytes);
    if (isDigest(target) && digest !== target) {
      throw new OciDigestMismatchError(`${refText}: manifest from ${url} hashes to ${digest}, not the requested ${target}`, { reference: refText, url, digest: target });
    }
    return { bytes, contentType: res.headers["content-type"] ?? "", digest, url };
  }

  /**
   * Opens a blob, from `offset` on when offset > 0 (a Range request; the answer says where it
   * really starts). Falls back to a layer's foreign `urls` (without any credentials) when the
   * registry does not have it.
   */
  async openBlob(ref: Reference, digest: string, offset: number, urls: string[] = []): Promise<BlobResponse> {
    const refText = formatReference(ref);
    const headers: Record<string, string> = {};
    if (offset > 0) headers.range = `bytes=${offset}-`;
    let res = await this.get(ref, `blobs/${digest}`, headers);
    if (res.status === 404 && urls.length > 0) {
      res.discard();
      for (const u of urls) {
        const parsed = new URL(u);
        if (parsed.protocol !== "https:" && parsed.protocol !== "http:") continue;
        res = await sendWithRetry(u, { headers: { "user-agent": this.userAgent, ...headers }, signal: this.opts.signal }, this.policy);
        if (res.status === 200 || res.status === 206) break;
        res.discard();
      }
    }
    if (res.status === 416 && offset > 0) {
      // The partial is not a prefix the server agrees with: start over.
      res.discard();
      return this.openBlob(ref, digest, 0, urls);
    }
    if (res.status === 404) {
      throw new OciNotFoundError(`${refText}: blob ${digest} not found (${res.url}: HTTP 404)`, { reference: refText, digest, url: res.url, status: 404 });
    }
    if (res.status !== 200 && res.status !== 206) {
      const { text } = await errorSummary(res);
      throw new OciError(`${refText}: fetching blob ${digest} from ${res.url} failed: HTTP ${res.status}${text ? ": " + text : ""}`, {
        reference: refText,
        digest,
        url: res.url,
        status: res.status,
      });
    }
    let start = 0;
    if (res.status === 206) {
      const m = /^bytes (\d+)-/.exec(res.headers["content-range"] ?? "");
      start = m ? Number(m[1]) : -1;
      if (start !== offset) {
        res.discard();
        if (offset === 0) throw new OciError(`${res.url}: unexpected partial answer (${res.headers["content-range"]}) to a full request`, { url: res.url, digest });
        return this.openBlob(ref, digest, 0, urls);
      }
    }
    return { start, body: res.body, url: res.url, discard: () => res.discard() };
  }

  // ---- push (bundles as OCI artifacts) ----

  /** Uploads a blob (monolithic: POST then PUT with the digest), unless the registry has it. */
  async pushBlob(ref: Reference, digest: string, bytes: Uint8Array): Promise<"exists" | "uploaded"> {
    const base = `${this.base(ref)}/v2/${ref.repository}`;
    const head = await this.call(ref, `${base}/blobs/${digest}`, { method: "HEAD", headers: {} }, "push");
    head.discard();
    if (head.status === 200) return "exists";
    const start = await this.call(ref, `${base}/blobs/uploads/`, { method: "POST", headers: { "content-length": "0" } }, "push");
    if (start.status !== 202 || !start.headers.location) throw await this.pushError(ref, start, `starting the upload of ${digest}`);
    start.discard();
    const loc = new URL(start.headers.location, `${base}/`);
    loc.searchParams.set("digest", digest);
    const put = await this.call(ref, loc.href, { method: "PUT", headers: { "content-type": "application/octet-stream", "content-length": String(bytes.length) }, body: bytes }, "push");
    if (put.status !== 201) throw await this.pushError(ref, put, `uploading ${digest}`);
    put.discard();
    return "uploaded";
  }

  /** PUTs a manifest under a tag (or its digest); returns the digest the registry names it by. */
  async pushManifest(ref: Reference, tag: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const url = `${this.base(ref)}/v2/${ref.repository}/manifests/${tag}`;
    const res = await this.call(ref, url, { method: "PUT", headers: { "content-type": mediaType }, body: bytes }, "push");
    if (res.status !== 201) throw await this.pushError(ref, res, `putting the manifest ${tag}`);
    res.discard();
    return sha256Digest(bytes);
  }

  private async pushError(ref: Reference, res: HttpResponse, what: string): Promise<OciError> {
    const { text } = await errorSummary(res);
    const refText = formatReference(ref);
    if (res.status === 401 || res.status === 403) {
      return new OciAuthError(`${refText}: registry ${ref.registry} refused ${what} (HTTP ${res.status}${text ? ": " + text : ""}); run \`docker login ${ref.registry}\` with an account that may push to ${ref.repository}`, { reference: refText, status: res.status, url: res.url });
    }
    return new OciError(`${refText}: ${what} failed: HTTP ${res.status}${text ? ": " + text : ""}`, { reference: refText, status: res.status, url: res.url });
  }
}
