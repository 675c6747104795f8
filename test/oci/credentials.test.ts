import { afterAll, beforeAll, expect, test } from "bun:test";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { OciError, RegistrySource, dockerConfigCredentials, staticCredentials } from "../../src/oci/index.ts";
import { BlobCache } from "../../src/oci/cache.ts";
import { freePort } from "../helpers/registry.ts";

let tmp: string;
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-oci-cred-"));
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

function env(config: object, bin?: string) {
  const dir = fs.mkdtempSync(path.join(tmp, "d-"));
  fs.writeFileSync(path.join(dir, "config.json"), JSON.stringify(config));
  return { DOCKER_CONFIG: dir, HOME: tmp, PATH: bin ? `${bin}:/usr/bin:/bin` : "/usr/bin:/bin" };
}

test("Docker Hub credentials live under https://index.docker.io/v1/", async () => {
  const look = dockerConfigCredentials({ env: env({ auths: { "https://index.docker.io/v1/": { auth: Buffer.from("u:p:with:colons").toString("base64") } } }) });
  expect(await look("docker.io")).toMatchObject({ username: "u", password: "p:with:colons" });
  expect(await look("ghcr.io")).toBeUndefined();
});

test("credsStore helper for every registry; its 'not found' falls back to auths; <token> means identity token", async () => {
  const bin = fs.mkdtempSync(path.join(tmp, "bin-"));
  fs.writeFileSync(
    path.join(bin, "docker-credential-store"),
    `#!/bin/sh\nread host\ncase "$host" in\n  a.example) echo '{"Username":"<token>","Secret":"idt"}' ;;\n  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n`,
    { mode: 0o755 },
  );
  const look = dockerConfigCredentials({ env: env({ credsStore: "store", auths: { "b.example": { auth: Buffer.from("x:y").toString("base64") } } }, bin) });
  expect(await look("a.example")).toMatchObject({ identityToken: "idt", source: "credential helper docker-credential-store" });
  expect(await look("b.example")).toMatchObject({ username: "x", password: "y" });
  const missing = dockerConfigCredentials({ env: env({ credsStore: "nonexistent" }) });
  await expect(missing("c.example")).rejects.toThrow(/docker-credential-nonexistent .* is not on PATH/);
});

test("no config file means no credentials", async () => {
  expect(await dockerConfigCredentials({ env: { DOCKER_CONFIG: path.join(tmp, "none"), HOME: tmp } })("x.io")).toBeUndefined();
});

test("an unreachable registry fails with the URL and the reason, after retries", async () => {
  const port = await freePort();
  const cache = new BlobCache(path.join(tmp, "cache"));
  const err = await new RegistrySource(`127.0.0.1:${port}/app:1`, { cache, credentials: staticCredentials({}), retry: { retries: 1, baseDelayMs: 10 } })
    .resolve()
    .catch((e) => e);
  expect(err).toBeInstanceOf(OciError);
  expect(err.message).toContain(`GET http://127.0.0.1:${port}/v2/app/manifests/1`);
  expect(err.message).toMatch(/ECONNREFUSED|Unable to connect/);
});
