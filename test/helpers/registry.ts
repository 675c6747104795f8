// A real registry for tests: Debian's `docker-registry` (distribution 2.x) on 127.0.0.1 with
// a random free port, a temp storage dir and a config file written here; optional htpasswd
// Basic auth. Plus a tiny pusher speaking the distribution API (monolithic blob uploads and
// manifest PUTs) so tests can publish images built in memory.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { TestImage } from "./oci-images.ts";

export interface RunningRegistry {
  /** host:port, e.g. 127.0.0.1:40123 */
  host: string;
  url: string;
  dir: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

export async function startRegistry(opts: { htpasswd?: { user: string; password: string } } = {}): Promise<RunningRegistry> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "banger-registry-"));
  let auth = "";
  if (opts.htpasswd) {
    const p = Bun.spawnSync(["htpasswd", "-Bbn", opts.htpasswd.user, opts.htpasswd.password]);
    if (p.exitCode !== 0) throw new Error(`htpasswd failed: ${p.stderr.toString()}`);
    fs.writeFileSync(path.join(dir, "htpasswd"), p.stdout);
    auth = `auth:\n  htpasswd:\n    realm: banger-test\n    path: ${path.join(dir, "htpasswd")}\n`;
  }
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const config = [
      "version: 0.1",
      "log:",
      "  level: error",
      "  accesslog:",
      "    disabled: true",
      "storage:",
      "  filesystem:",
      `    rootdirectory: ${path.join(dir, "data")}`,
      "  delete:",
      "    enabled: true",
      "http:",
      `  addr: 127.0.0.1:${port}`,
      auth,
    ].join("\n");
    fs.writeFileSync(path.join(dir, "config.yml"), config);
    const proc = Bun.spawn(["docker-registry", "serve", path.join(dir, "config.yml")], { stdout: "pipe", stderr: "pipe" });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    let up = false;
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        const r = await fetch(`${url}/v2/`);
        await r.arrayBuffer();
        if (r.status === 200 || r.status === 401) {
          up = true;
          break;
        }
      } catch {}
      await Bun.sleep(50);
    }
    if (!up) {
      proc.kill();
      await proc.exited;
      const err = await new Response(proc.stderr).text();
      if (tries < 2) continue; // port taken between probe and bind
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start on ${url}: ${err.slice(0, 500)}`);
    }
    return {
      host: `127.0.0.1:${port}`,
      url,
      dir,
      async stop() {
        proc.kill();
        await proc.exited;
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

export interface PushAuth {
  user: string;
  password: string;
}

function authHeaders(auth?: PushAuth): Record<string, string> {
  return auth ? { authorization: "Basic " + Buffer.from(`${auth.user}:${auth.password}`).toString("base64") } : {};
}

export async function pushBlob(registryUrl: string, repo: string, digest: string, bytes: Uint8Array, auth?: PushAuth): Promise<void> {
  const head = await fetch(`${registryUrl}/v2/${repo}/blobs/${digest}`, { method: "HEAD", headers: authHeaders(auth) });
  if (head.status === 200) return;
  const start = await fetch(`${registryUrl}/v2/${repo}/blobs/uploads/`, { method: "POST", headers: authHeaders(auth) });
  await start.arrayBuffer();
  if (start.status !== 202) throw new Error(`upload start for ${repo} ${digest}: HTTP ${start.status}`);
  const loc = new URL(start.headers.get("location")!, registryUrl);
  loc.searchParams.set("digest", digest);
  const put = await fetch(loc, { method: "PUT", headers: { ...authHeaders(auth), "content-type": "application/octet-stream" }, body: bytes });
  const text = await put.text();
  if (put.status !== 201) throw new Error(`blob PUT ${repo} ${digest}: HTTP ${put.status} ${text}`);
}

export async function pushManifest(registryUrl: string, repo: string, ref: string, bytes: Uint8Array, mediaType: string, auth?: PushAuth): Promise<void> {
  const put = await fetch(`${registryUrl}/v2/${repo}/manifests/${ref}`, { method: "PUT", headers: { ...authHeaders(auth), "content-type": mediaType }, body: bytes });
  const text = await put.text();
  if (put.status !== 201) throw new Error(`manifest PUT ${repo}:${ref}: HTTP ${put.status} ${text}`);
}

/** Pushes an image's blobs and manifest; tags it when `tag` is given. */
export async function pushImage(registryUrl: string, repo: string, img: TestImage, tag?: string, auth?: PushAuth): Promise<void> {
  for (const [d, b] of img.blobs) await pushBlob(registryUrl, repo, d, b, auth);
  await pushManifest(registryUrl, repo, tag ?? img.manifestDigest, img.manifest, img.mediaType, auth);
}

/** Pushes several platform images and an index over them, tagged `tag`. */
export async function pushIndex(
  registryUrl: string,
  repo: string,
  images: TestImage[],
  index: { bytes: Uint8Array; digest: string; mediaType: string },
  tag: string,
  auth?: PushAuth,
): Promise<void> {
  for (const img of images) await pushImage(registryUrl, repo, img, undefined, auth);
  await pushManifest(registryUrl, repo, tag, index.bytes, index.mediaType, auth);
}
