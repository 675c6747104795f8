// Registry authentication: the WWW-Authenticate challenge decides. `Bearer realm=...,
// service=...,scope=...` sends us to a token server (anonymously, with basic credentials, or
// with an identity token as OAuth2 refresh token); `Basic` means basic credentials on every
// request. Tokens are cached per registry and scope until they expire. Credentials go only to
// the registry's own origin and to the realm it names, and never over plain HTTP except to
// loopback or registries marked insecure.
import { OciAuthError } from "./errors.ts";
import { sendWithRetry, type RetryPolicy } from "./http.ts";
import { isLoopbackHost } from "./reference.ts";
import type { Credential, CredentialLookup } from "./credentials.ts";

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="x",service="y", Basic realm="z"` into challenges. */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const skip = (chars: string) => {
    while (i < header.length && chars.includes(header[i]!)) i++;
  };
  const token = () => {
    const start = i;
    while (i < header.length && /[A-Za-z0-9!#$%&'*+.^_`|~-]/.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  while (i < header.length) {
    skip(" \t,");
    const name = token();
    if (!name) break;
    skip(" \t");
    if (header[i] === "=" && out.length > 0) {
      i++;
      skip(" \t");
      let value = "";
      if (header[i] === '"') {
        i++;
        while (i < header.length && header[i] !== '"') {
          if (header[i] === "\\" && i + 1 < header.length) i++;
          value += header[i++];
        }
        i++;
      } else {
        const start = i;
        while (i < header.length && header[i] !== "," && header[i] !== " ") i++;
        value = header.slice(start, i);
      }
      out[out.length - 1]!.params[name.toLowerCase()] = value;
    } else {
      out.push({ scheme: name.toLowerCase(), params: {} });
    }
  }
  return out;
}

function basicHeader(c: Credential): string {
  return "Basic " + Buffer.from(`${c.username ?? ""}:${c.password ?? ""}`).toString("base64");
}

export class Authenticator {
  private headers = new Map<string, { value: string; expires: number }>();
  private creds = new Map<string, Promise<Credential | undefined>>();

  constructor(
    private readonly lookup: CredentialLookup | undefined,
    private readonly policy: RetryPolicy,
    private readonly insecure: string[],
    private readonly userAgent: string,
  ) {}

  credentials(registry: string): Promise<Credential | undefined> {
    let p = this.creds.get(registry);
    if (!p) {
      p = this.lookup ? this.lookup(registry) : Promise.resolve(undefined);
      this.creds.set(registry, p);
    }
    return p;
  }

  /** Authorization header to use for (registry, scope), if we have one. */
  cached(registry: string, scope: string): string | undefined {
    const e = this.headers.get(`${registry}|${scope}`) ?? this.headers.get(`${registry}|*`);
    if (!e) return undefined;
    if (Date.now() > e.expires) {
      this.headers.delete(`${registry}|${scope}`);
      return undefined;
    }
    return e.value;
  }

  forget(registry: string, scope: string): void {
    this.headers.delete(`${registry}|${scope}`);
    this.headers.delete(`${registry}|*`);
  }

  private mayCarrySecrets(url: URL): boolean {
    return url.protocol === "https:" || isLoopbackHost(url.host) || this.insecure.includes(url.host);
  }

  /** Answers a 401 challenge from `url`; afterwards `cached()` returns the header to retry with. */
  async answer(registry: string, scope: string, header: string | undefined, url: string, signal?: AbortSignal): Promise<void> {
    const challenges = parseChallenges(header ?? "");
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    const cred = await this.credentials(registry);
    if (bearer) return this.fetchToken(registry, scope, bearer, cred, url, signal);
    if (basic) {
      if (!cred?.username || !cred.password) {
        throw new OciAuthError(
          `${url}: registry ${registry} asks for a username and password (Basic auth) and none were found for it; run \`docker login ${registry}\``,
          { url, status: 401 },
        );
      }
      if (!this.mayCarrySecrets(new URL(url))) throw new OciAuthError(`${url}: refusing to send a password over plain HTTP`, { url });
      this.headers.set(`${registry}|*`, { value: basicHeader(cred), expires: Infinity });
      return;
    }
    throw new OciAuthError(`${url}: HTTP 401 with no usable WWW-Authenticate challenge (${JSON.stringify(header ?? "")})`, { url, status: 401 });
  }

  private async fetchToken(registry: string, scope: string, ch: Challenge, cred: Credential | undefined, url: string, signal?: AbortSignal): Promise<void> {
    const realmText = ch.params.realm;
    let realm: URL;
    try {
      realm = new URL(realmText ?? "");
    } catch {
      throw new OciAuthError(`${url}: bearer challenge has no valid realm (${JSON.stringify(realmText)})`, { url });
    }
    if (realm.protocol !== "https:" && realm.protocol !== "http:") throw new OciAuthError(`${url}: token realm ${realm.href} is not HTTP(S)`, { url });
    const tokenScope = ch.params.scope || scope;
    const sendSecrets = cred !== undefined && this.mayCarrySecrets(realm);
    const headers: Record<string, string> = { "user-agent": this.userAgent };
    let res;
    if (sendSecrets && cred.identityToken) {
      const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: cred.identityToken, client_id: "banger", scope: tokenScope });
      if (ch.params.service) form.set("service", ch.params.service);
      headers["content-type"] = "application/x-www-form-urlencoded";
      res = await sendWithRetry(realm.href, { method: "POST", headers, body: form.toString(), signal }, this.policy);
    } else {
      const q = new URL(realm.href);
      if (ch.params.service) q.searchParams.set("service", ch.params.service);
      for (const s of tokenScope.split(" ")) if (s) q.searchParams.append("scope", s);
      if (sendSecrets && cred.username && cred.password) headers.authorization = basicHeader(cred);
      res = await sendWithRetry(q.href, { headers, signal, trustedOrigin: realm.origin }, this.policy);
    }
    const who = sendSecrets ? `the credentials from ${cred!.source}` : "anonymous access";
    if (res.status !== 200) {
      const text = (await res.text().catch(() => "")).slice(0, 300);
      const hint = sendSecrets ? "" : cred ? " (credentials withheld: the realm is plain HTTP)" : `; no credentials were found for ${registry}, run \`docker login ${registry}\``;
      throw new OciAuthError(`token server ${realm.origin}${realm.pathname} refused ${who} for ${registry} (HTTP ${res.status}${text ? ": " + text.trim() : ""})${hint}`, {
        url: realm.href,
        status: res.status,
      });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown };
    try {
      body = JSON.parse(await res.text()) as typeof body;
    } catch {
      throw new OciAuthError(`token server ${realm.origin}${realm.pathname} answered with something other than JSON`, { url: realm.href });
    }
    const token = typeof body.token === "string" && body.token ? body.token : typeof body.access_token === "string" ? body.access_token : "";
    if (!token) throw new OciAuthError(`token server ${realm.origin}${realm.pathname} returned no token for ${registry}`, { url: realm.href });
    const lifetime = typeof body.expires_in === "number" && body.expires_in > 0 ? body.expires_in : 60;
    this.headers.set(`${registry}|${scope}`, { value: `Bearer ${token}`, expires: Date.now() + Math.max(lifetime - 10, 5) * 1000 });
  }
}
