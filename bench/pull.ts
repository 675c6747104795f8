// The pull cases: `banger image pull` against the tools it replaces, on OCI layouts made from
// the Debian rootfs (bench/oci-fixtures.ts), warm (an `oci:` layout, blob cache pre-filled) or
// cold (a real docker-registry on 127.0.0.1 behind a proxy capping the link at 50 MB/s).
// Every tool is a bash script reading its parameters from the environment (see baselines.ts):
//   SOURCE (banger's source), LAYOUT + TAG (the OCI layout), LAYERS ("gzip:BLOB zstd:BLOB ..."),
//   RUN (a fresh per-measurement dir, made by the tool's untimed setup and removed after),
//   TEMPLATE_CACHE (warm: the blob cache to copy into RUN untimed), SKOPEO_SRC, BLOB_URL (cold),
//   SIZE, MKFS_N, OUT, WORK, BUN, REPO, SYNC.
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEBUGFS, MKFS, type Tool } from "./baselines.ts";
import type { OciFixture } from "./oci-fixtures.ts";
import { checkRate, type RateCheck } from "./throttle-proxy.ts";

/** The link the cold case is capped at (bytes per second). */
export const LINK_RATE = 50e6;
export const COLD_REPO = "bench/debian";

const SYNC_OUT = `if [ "$SYNC" = 1 ]; then sync "$OUT"; fi`;

/** Fresh XDG dirs and HOME under $RUN; the warm runs get a copy of the template blob cache (hardlinked blobs). */
export const FRESH_RUN = [
  "set -e",
  `rm -rf "$RUN"; mkdir -p "$RUN/state" "$RUN/config" "$RUN/home"; mkdir -m 700 "$RUN/runtime"`,
  `if [ -n "$TEMPLATE_CACHE" ]; then`,
  `  cp -al "$TEMPLATE_CACHE" "$RUN/cache"`,
  // Only the immutable blobs stay shared with the template; index.json and the rest are copied.
  `  find "$RUN/cache" -type f ! -path '*/blobs/*' -exec sh -c 'for f; do cp -p "$f" "$f.copy" && mv -f "$f.copy" "$f"; done' sh {} +`,
  `else mkdir -p "$RUN/cache"; fi`,
].join("\n");

export const BANGER_ENV = `export XDG_STATE_HOME="$RUN/state" XDG_CACHE_HOME="$RUN/cache" XDG_CONFIG_HOME="$RUN/config" XDG_RUNTIME_DIR="$RUN/runtime" HOME="$RUN/home"`;

export const bangerPull: Tool = {
  name: "banger",
  description: "`BANGER_NO_DAEMON=1 bun run banger image pull SOURCE --name bench --quiet` (the services in the CLI's process, as measured before the daemon; bench/daemon.ts measures the daemon) with fresh XDG_STATE/CACHE/CONFIG/RUNTIME dirs and HOME per run (warm: the blob cache copied in beforehand, untimed; the store empty)",
  setup: FRESH_RUN,
  script: [
    "set -e",
    `cd "$REPO"`,
    BANGER_ENV,
    "export BANGER_NO_DAEMON=1",
    `"$BUN" run --silent banger image pull "$SOURCE" --name bench --quiet`,
    // Durable like every other tool's output (banger fsyncs its image itself; this finds nothing left to write).
    `if [ "$SYNC" = 1 ]; then find "$RUN/state" "$RUN/cache" -type f -size +1M -exec sync {} +; fi`,
  ].join("\n"),
  // The image banger published, linked to OUT for e2fsck and the content checks.
  after: [
    "set -e",
    `img=$(find "$RUN/state" -type f -name '*.ext4' -size +1M | head -n 1)`,
    `[ -n "$img" ] || img=$(find "$RUN/state" -type f -size +64M | head -n 1)`,
    `[ -n "$img" ] || { echo "no image found under $RUN/state" >&2; exit 1; }`,
    `ln -f "$img" "$OUT"`,
  ].join("\n"),
};

/** The reference pipeline: umoci unpack, then mkfs.ext4 -d and a debugfs ownership/mode pass (as go-pipeline). */
export const umociPipeline: Tool = {
  name: "umoci-pipeline",
  description: "`umoci unpack --image LAYOUT:TAG BUNDLE` + `mkfs.ext4 -d BUNDLE/rootfs` (banger's image size) + the `debugfs -w` uid/gid/mode script of go-pipeline, all timed",
  script: [
    "set -e",
    `b="$WORK/extract"; rm -rf "$b"`,
    `umoci unpack --image "$LAYOUT:$TAG" "$b" > /dev/null`,
    `"${MKFS}" -q -F \${MKFS_N:+-N "$MKFS_N"} -d "$b/rootfs" "$OUT" "$((SIZE / 1024))k"`,
    `"$BUN" "$BENCH/debugfs-script.ts" "$b/rootfs" > "$WORK/debugfs.script"`,
    `"${DEBUGFS}" -w -f "$WORK/debugfs.script" "$OUT" > /dev/null 2> "$WORK/debugfs.err"`,
    SYNC_OUT,
  ].join("\n"),
};

/** For zstd layers, which Debian's umoci (0.4.7) cannot read: GNU tar --zstd instead of umoci unpack. */
export const tarZstdPipeline: Tool = {
  name: "tar-zstd-pipeline",
  description: "`tar --zstd -xpf LAYER` (umoci 0.4.7 cannot read zstd layers) + `mkfs.ext4 -d` (banger's image size) + the `debugfs -w` uid/gid/mode script, all timed",
  script: [
    "set -e",
    `d="$WORK/extract"; rm -rf "$d"; mkdir -p "$d"`,
    `for l in $LAYERS; do tar --zstd --numeric-owner --xattrs --xattrs-include='*' -xpf "\${l#*:}" -C "$d"; done`,
    `"${MKFS}" -q -F \${MKFS_N:+-N "$MKFS_N"} -d "$d" "$OUT" "$((SIZE / 1024))k"`,
    `"$BUN" "$BENCH/debugfs-script.ts" "$d" > "$WORK/debugfs.script"`,
    `"${DEBUGFS}" -w -f "$WORK/debugfs.script" "$OUT" > /dev/null 2> "$WORK/debugfs.err"`,
    SYNC_OUT,
  ].join("\n"),
};

/** Decompressing every layer blob to /dev/null, one after the other, with the reference CLI. */
export function decompressFloor(name: string, what: string): Tool {
  return {
    name,
    description: `${what}: every layer blob decompressed to /dev/null by the reference CLI (\`gzip -dc\` / \`zstd -dc\`), one after the other`,
    script: [
      "set -e",
      `for l in $LAYERS; do case "\${l%%:*}" in gzip) gzip -dc "\${l#*:}" ;; zstd) zstd -qdc "\${l#*:}" ;; *) exit 3 ;; esac > /dev/null; done`,
    ].join("\n"),
  };
}

export const skopeoCopy: Tool = {
  name: "skopeo copy",
  description: "`skopeo copy --src-tls-verify=false docker://PROXY/REPO:TAG oci:DIR:TAG` through the same 50 MB/s proxy (downloads and verifies the blobs, no unpacking)",
  setup: `rm -rf "$RUN"; mkdir -p "$RUN"`,
  script: [
    "set -e",
    `skopeo copy -q --src-tls-verify=false "$SKOPEO_SRC" "oci:$RUN/skopeo:$TAG"`,
    `if [ "$SYNC" = 1 ]; then find "$RUN/skopeo" -type f -exec sync {} +; fi`,
  ].join("\n"),
};

export const curlDownload: Tool = {
  name: "curl layer (link floor)",
  description: "`curl -o /dev/null` of the layer blob through the proxy: the download alone, measured",
  script: `set -e; curl -sSf -o /dev/null "$BLOB_URL"`,
};

export function layersEnv(fx: OciFixture): string {
  return fx.layers.map((l) => `${l.compression}:${l.path}`).join(" ");
}

// ---------------------------------------------------------------------------------------------
// The registry and the proxy of the cold case.

export interface Service {
  host: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
  const port = s.port;
  s.stop(true);
  return port;
}

/** Debian's docker-registry (distribution 2.x) on 127.0.0.1, storage in dir. */
export async function startRegistry(dir: string): Promise<Service> {
  mkdirSync(dir, { recursive: true });
  for (let tries = 0; ; tries++) {
    const port = await freePort();
    const config = join(dir, "config.yml");
    writeFileSync(
      config,
      ["version: 0.1", "log:", "  level: error", "  accesslog:", "    disabled: true", "storage:", "  filesystem:", `    rootdirectory: ${join(dir, "data")}`, "http:", `  addr: 127.0.0.1:${port}`, ""].join("\n"),
    );
    const proc = Bun.spawn(["docker-registry", "serve", config], { stdout: "ignore", stderr: "pipe" });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && proc.exitCode === null) {
      try {
        const r = await fetch(`${url}/v2/`);
        await r.arrayBuffer();
        if (r.status === 200) {
          return {
            host: `127.0.0.1:${port}`,
            async stop() {
              proc.kill();
              await proc.exited;
            },
          };
        }
      } catch {}
      await Bun.sleep(50);
    }
    proc.kill();
    await proc.exited;
    if (tries >= 2) throw new Error(`docker-registry did not start on ${url}: ${(await new Response(proc.stderr).text()).slice(0, 400)}`);
  }
}

/** The throttling proxy, in its own process (its CPU is no tool's). */
export async function startProxy(upstream: string, rate: number): Promise<Service> {
  const proc = Bun.spawn([process.execPath, join(import.meta.dir, "throttle-proxy.ts"), "--upstream", upstream, "--rate", String(rate)], { stdout: "pipe", stderr: "inherit" });
  const reader = proc.stdout.getReader();
  let text = "";
  const deadline = Date.now() + 10_000;
  while (!/listening \S+:\d+\n/.test(text) && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const m = /listening (\S+:\d+)\n/.exec(text);
  if (!m) {
    proc.kill();
    throw new Error(`throttle proxy did not start: ${text}`);
  }
  return {
    host: m[1]!,
    async stop() {
      proc.kill();
      await proc.exited;
    },
  };
}

/** Pushes the layout's tagged image to the registry (skopeo, digests kept). */
export async function pushLayout(fx: OciFixture, registry: string): Promise<string> {
  const ref = `${registry}/${COLD_REPO}:${fx.tag}`;
  const p = Bun.spawn(["skopeo", "copy", "-q", "--preserve-digests", "--dest-tls-verify=false", `oci:${fx.layout}:${fx.tag}`, `docker://${ref}`], { stdout: "pipe", stderr: "pipe" });
  if ((await p.exited) !== 0) throw new Error(`skopeo push to ${ref} failed: ${(await new Response(p.stderr).text()).slice(0, 400)}`);
  return ref;
}

export function blobUrl(host: string, digest: string): string {
  return `http://${host}/v2/${COLD_REPO}/blobs/${digest}`;
}

export function describeRate(r: RateCheck): string {
  const w = [...r.windows].sort((a, b) => a - b);
  const mb = (x: number | undefined) => (x === undefined ? "—" : (x / 1e6).toFixed(1));
  return `${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds.toFixed(3)} s = ${mb(r.rate)} MB/s; per 250 ms window min ${mb(w[0])}, median ${mb(w[w.length >> 1])}, max ${mb(w.at(-1))} MB/s`;
}

export { checkRate };

// ---------------------------------------------------------------------------------------------
// Running a tool's scripts outside the measurement (the warm case's template pull).

export async function runScript(script: string, env: Record<string, string>, cwd: string): Promise<void> {
  const p = Bun.spawn(["bash", "-c", script], { cwd, env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" });
  const code = await p.exited;
  if (code !== 0) {
    const out = (await new Response(p.stdout).text()) + (await new Response(p.stderr).text());
    throw new Error(`exit ${code}: ${out.trim().split("\n").slice(-6).join(" / ").slice(0, 600)}`);
  }
}

/**
 * Pulls once with banger into `dir` (untimed): its blob cache becomes the warm runs' template,
 * its image's size the size the pipeline gets. Returns the cache dir (null when the pull left no
 * $XDG_CACHE_HOME/banger/oci) and the image's bytes.
 */
export async function templatePull(env: Record<string, string>, dir: string, cwd: string): Promise<{ cache: string | null; imageBytes: number }> {
  const e = { ...env, RUN: dir, TEMPLATE_CACHE: "", OUT: `${dir}.img` };
  await runScript(bangerPull.setup!, e, cwd);
  await runScript(bangerPull.script, e, cwd);
  await runScript(bangerPull.after!, e, cwd);
  const cache = join(dir, "cache");
  const imageBytes = statSync(`${dir}.img`).size;
  rmSync(`${dir}.img`, { force: true });
  rmSync(join(dir, "state"), { recursive: true, force: true });
  return { cache: existsSync(join(cache, "banger/oci")) ? cache : null, imageBytes };
}
