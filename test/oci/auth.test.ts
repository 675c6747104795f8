// Registry authentication against real components: docker-registry with htpasswd Basic auth,
// and a small bearer-token server of our own in front of an open docker-registry. Credentials
// come from a Docker config.json written here (auths, identitytoken, credHelpers).
import { afterAll, beforeAll, describe, expect } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { BlobCache, OciAuthError, RegistrySource, dockerConfigCredentials, type CredentialLookup } from "../../src/oci/index.ts";
import { hasTool, testWith } from "../helpers/env.ts";
import { concat, makeImage, makeLayer, makeTar } from "../helpers/oci-images.ts";
import { startProxy, type Proxy } from "../helpers/oci-proxy.ts";
import { pushImage, startRegistry, type RunningRegistry } from "../helpers/registry.ts";

const REG = { tools: ["docker-registry", "htpasswd"] };
const FAST_RETRY = { retries: 2, baseDelayMs: 20, maxDelayMs: 100, maxRetryAfterMs: 1000 };
const img = makeImage({ layers: [makeLayer(makeTar([{ name: "hello.txt", content: "hello\n".repeat(1000) }]), "gzip")] });

let basicReg: RunningRegistry;
let openReg: RunningRegistry;
let tmp: string;
const proxies: Proxy[] = [];

if (hasTool("docker-registry") && hasTool("htpasswd")) {
  beforeAll(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-oci-auth-"));
    [basicReg, openReg] = await Promise.all([startRegistry({ htpasswd: { user: "alice", password: "s3cret" } }), startRegistry()]);
    await pushImage(basicReg.url, "private/app", img, "1", { user: "alice", password: "s3cret" });
    await pushImage(openReg.url, "public/app", img, "1");
    await pushImage(openReg.url, "private/app", img, "1");
  }, 30_000);
  afterAll(async () => {
    for (const p of proxies) p.stop();
    await Promise.all([basicReg?.stop(), openReg?.stop()]);
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
}

/** A Docker config dir with `config`, and the env that points at it. */
function dockerEnv(config: object, extraPath?: string): Record<string, string | undefined> {
  const dir = fs.mkdtempSync(path.join(tmp, "docker-"));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  return { ...process.env, DOCKER_CONFIG: dir, PATH: extraPath ? `${extraPath}:${process.env.PATH}` : process.env.PATH };
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

async function pull(ref: string, credentials: CredentialLookup) {
  const cache = new BlobCache(fs.mkdtempSync(path.join(tmp, "cache-")));
  const resolved = await new RegistrySource(ref, { cache, credentials, retry: FAST_RETRY }).resolve();
  const parts: Uint8Array[] = [];
  for await (const c of resolved.openLayer(0)) parts.push(c.slice());
  expect(concat(parts)).toEqual(img.layers[0]!.tar);
  return { resolved, cache };
}

describe("Basic auth (htpasswd)", () => {
  testWith(REG, "right password from config.json auths", async () => {
    const env = dockerEnv({ auths: { [basicReg.host]: { auth: b64("alice:s3cret") } } });
    const { resolved } = await pull(`${basicReg.host}/private/app:1`, dockerConfigCredentials({ env }));
    expect(resolved.manifestDigest).toBe(img.manifestDigest);
  });

  testWith(REG, "wrong password: rejected, naming registry, repository and where the credentials came from", async () => {
    const env = dockerEnv({ auths: { [`http://${basicReg.host}`]: { auth: b64("alice:wrong") } } });
    const err = await pull(`${basicReg.host}/private/app:1`, dockerConfigCredentials({ env })).catch((e) => e);
    expect(err).toBeInstanceOf(OciAuthError);
    expect(err.message).toContain(`registry ${basicReg.host} rejected the credentials from ${env.DOCKER_CONFIG}/config.json auths["http://${basicReg.host}"]`);
    expect(err.message).toContain("repository private/app (HTTP 401");
  });

  testWith(REG, "no credentials: says so and suggests docker login", async () => {
    const env = dockerEnv({ auths: {} });
    await expect(pull(`${basicReg.host}/private/app:1`, dockerConfigCredentials({ env }))).rejects.toThrow(
      `registry ${basicReg.host} asks for a username and password (Basic auth) and none were found for it; run \`docker login ${basicReg.host}\``,
    );
  });

  testWith(REG, "credHelpers: docker-credential-<name> get is asked with the host on stdin", async () => {
    const bin = fs.mkdtempSync(path.join(tmp, "bin-"));
    const log = path.join(bin, "asked");
    fs.writeFileSync(
      path.join(bin, "docker-credential-bangertest"),
      `#!/bin/sh\n[ "$1" = get ] || exit 2\nread host\necho "$host" >> ${log}\nif [ "$host" = "${basicReg.host}" ]; then echo '{"ServerURL":"${basicReg.host}","Username":"alice","Secret":"s3cret"}'; else echo "credentials not found in native keychain"; exit 1; fi\n`,
      { mode: 0o755 },
    );
    const env = dockerEnv({ credHelpers: { [basicReg.host]: "bangertest" }, auths: { [basicReg.host]: { auth: b64("alice:wrong") } } }, bin);
    await pull(`${basicReg.host}/private/app:1`, dockerConfigCredentials({ env }));
    expect(fs.readFileSync(log, "utf8").trim()).toBe(basicReg.host);
  });
});

describe("Bearer tokens (our token server in front of docker-registry)", () => {
  /** Token server + auth gate in front of openReg; blobs are redirected to a separate "CDN" origin. */
  function tokenFront() {
    const issued = new Map<string, string>(); // token -> scope
    const tokenRequests: { scope: string; authorization?: string; grant?: string }[] = [];
    const cdn = startProxy(openReg.url);
    proxies.push(cdn);
    const front = startProxy(openReg.url, async (req, url, self) => {
      if (url.pathname === "/token") {
        let scope = url.searchParams.get("scope") ?? "";
        let grant: string | undefined;
        let refresh: string | undefined;
        if (req.method === "POST") {
          const form = new URLSearchParams(await req.text());
          scope = form.get("scope") ?? "";
          grant = form.get("grant_type") ?? undefined;
          refresh = form.get("refresh_token") ?? undefined;
        }
        const authorization = req.headers.get("authorization") ?? undefined;
        tokenRequests.push({ scope, authorization, grant });
        const privateScope = scope.includes("private/");
        const basicOk = authorization === "Basic " + b64("bob:hunter2");
        const refreshOk = grant === "refresh_token" && refresh === "id-token-of-bob";
        if (privateScope && !basicOk && !refreshOk) return Response.json({ errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] }, { status: 401 });
        const token = `T${issued.size}-${crypto.randomUUID()}`;
        issued.set(token, scope);
        return Response.json(req.method === "POST" ? { access_token: token, expires_in: 300 } : { token, expires_in: 300 });
      }
      if (!url.pathname.startsWith("/v2/")) return undefined;
      const repo = /^\/v2\/(.+?)\/(manifests|blobs|tags)\//.exec(url.pathname)?.[1];
      const scope = `repository:${repo}:pull`;
      const given = req.headers.get("authorization")?.replace(/^Bearer /, "");
      if (!repo || !given || issued.get(given) !== scope) {
        return Response.json(
          { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] },
          { status: 401, headers: { "www-authenticate": `Bearer realm="${self}/token",service="banger-test",scope="${scope}"` } },
        );
      }
      if (url.pathname.includes("/blobs/")) return new Response(null, { status: 307, headers: { location: `${cdn.url}${url.pathname}?signed=1` } });
      return undefined;
    });
    proxies.push(front);
    return { front, cdn, tokenRequests };
  }

  testWith(REG, "anonymous token; one token per scope; Authorization never reaches the redirect target", async () => {
    const { front, cdn, tokenRequests } = tokenFront();
    await pull(`${front.host}/public/app:1`, dockerConfigCredentials({ env: dockerEnv({}) }));
    expect(tokenRequests).toEqual([{ scope: "repository:public/app:pull", authorization: undefined, grant: undefined }]);
    const cdnBlobGets = cdn.seen.filter((r) => r.path.includes("/blobs/"));
    expect(cdnBlobGets.length).toBe(2); // config + layer
    for (const r of cdnBlobGets) expect(r.headers.authorization).toBeUndefined();
    expect(front.seen.filter((r) => r.path.includes("/blobs/")).every((r) => r.headers.authorization?.startsWith("Bearer "))).toBe(true);
  });

  testWith(REG, "private repository: basic credentials go to the token server; anonymous is refused clearly", async () => {
    const { front, tokenRequests } = tokenFront();
    const env = dockerEnv({ auths: { [front.host]: { auth: b64("bob:hunter2") } } });
    await pull(`${front.host}/private/app:1`, dockerConfigCredentials({ env }));
    expect(tokenRequests.at(-1)!.authorization).toBe("Basic " + b64("bob:hunter2"));
    const err = await pull(`${front.host}/private/app:1`, dockerConfigCredentials({ env: dockerEnv({}) })).catch((e) => e);
    expect(err).toBeInstanceOf(OciAuthError);
    expect(err.message).toContain(`token server ${front.url}/token refused anonymous access for ${front.host} (HTTP 401`);
    expect(err.message).toContain(`no credentials were found for ${front.host}`);
  });

  testWith(REG, "identitytoken is used as an OAuth2 refresh token", async () => {
    const { front, tokenRequests } = tokenFront();
    const env = dockerEnv({ auths: { [front.host]: { identitytoken: "id-token-of-bob" } } });
    await pull(`${front.host}/private/app:1`, dockerConfigCredentials({ env }));
    expect(tokenRequests.at(-1)).toEqual({ scope: "repository:private/app:pull", authorization: undefined, grant: "refresh_token" });
  });
});

