// The benchmark cases of the issue, each with a full and a --quick (smoke) variant.
import { bigFileTar, debianRootfs, manyFilesTar, zeroStreamCommand } from "./inputs.ts";
import { join } from "node:path";
import { banger, bangerStdin, goPipeline, mkfsOnly, pipeFloor, plainCopy, type Tool } from "./baselines.ts";
import { fiveLayerFixture, oneLayerFixture, type Compression, type OciFixture } from "./oci-fixtures.ts";
import { bangerPull, blobUrl, checkRate, COLD_REPO, curlDownload, decompressFloor, describeRate, layersEnv, LINK_RATE, pushLayout, runScript, skopeoCopy, startProxy, startRegistry, tarZstdPipeline, templatePull, umociPipeline } from "./pull.ts";
import { mkfsInodeCount } from "./tar-scan.ts";
import { bangerPullDaemon, bangerPullDaemonWarm, bangerPullInProcess, listTools, prepareListStore } from "./daemon.ts";

export type Input =
  | { kind: "tar"; tar: string }
  | { kind: "stream"; gen: string[]; size: number; nonZeroBlocks: number }
  | {
      kind: "oci";
      fixture: OciFixture;
      /** Extra environment for the tools (SOURCE, LAYOUT, TAG, LAYERS, RUN, ...). */
      env: Record<string, string>;
      /** The size the pipeline's mkfs gets: banger's own image's when it was pulled once beforehand. */
      imageSize: number;
      mkfsInodes: number | null;
      notes: string[];
      /** Tools that cannot run, with the reason. */
      skip: { tool: string; why: string }[];
      /** The cold case: bytes per second the proxy was measured at. */
      linkRate?: number;
      /** Stops what prepare started (registry, proxy). */
      close?(): Promise<void>;
    }
  | {
      /** Commands against a store made beforehand (daemon-list). */
      kind: "store";
      env: Record<string, string>;
      notes: string[];
      close?(): Promise<void>;
    };

export interface PrepareContext {
  /** The case's scratch dir. */
  work: string;
  /** The harness's environment for the tools (REPO, BUN, WORK, SYNC). */
  env: Record<string, string>;
  /** Names of the tools that will be measured. */
  tools: string[];
}

export interface Variant {
  describe: string;
  prepare(ctx: PrepareContext): Promise<Input>;
  tools: Tool[];
  /** Baselines left out, with the reason (written to RESULTS.md). */
  skipped: { tool: string; why: string }[];
  timeoutS: number;
  /** Pass --size to banger too (false: let banger pick its default). */
  passSize: boolean;
}

export interface CaseDef {
  name: string;
  title: string;
  full: Variant;
  quick: Variant;
}

const TAR_TOOLS = [banger, goPipeline, mkfsOnly, plainCopy];
const GiB = 2 ** 30;

function filesVariant(files: number, dirs: number, timeoutS: number): Variant {
  return {
    describe: `${files.toLocaleString("en-US")} files of 1..1024 bytes in ${dirs.toLocaleString("en-US")} director${dirs === 1 ? "y" : "ies"}`,
    prepare: async () => ({ kind: "tar", tar: await manyFilesTar(files, dirs) }),
    tools: TAR_TOOLS,
    skipped: [],
    timeoutS,
    passSize: true,
  };
}

function bigVariant(size: number, timeoutS: number): Variant {
  return {
    describe: `one ${size >= GiB ? `${size / GiB} GiB` : `${size / 2 ** 20} MiB`} file of non-zero data`,
    prepare: async () => ({ kind: "tar", tar: await bigFileTar(size) }),
    tools: TAR_TOOLS,
    skipped: [],
    timeoutS,
    passSize: true,
  };
}

function zeroVariant(size: number, nonZeroBlocks: number, timeoutS: number): Variant {
  const skipWhy = `would store the ${size / GiB} GiB stream on disk (the case is defined as never stored)`;
  return {
    describe: `one ${size / GiB} GiB file, all zeros but ${nonZeroBlocks} non-zero 4 KiB blocks, generated on the fly into \`--rootfs-tar -\``,
    prepare: async () => ({ kind: "stream", gen: zeroStreamCommand(size, nonZeroBlocks), size, nonZeroBlocks }),
    tools: [bangerStdin, pipeFloor],
    skipped: [
      { tool: goPipeline.name, why: `extraction ${skipWhy}` },
      { tool: mkfsOnly.name, why: `needs the extracted file, which ${skipWhy}` },
      { tool: plainCopy.name, why: `replaced by "pipe read (floor)": a copy ${skipWhy}` },
    ],
    timeoutS,
    passSize: false,
  };
}

/**
 * A warm pull from an OCI layout: the blob cache is filled by one untimed banger pull (its
 * image's size is what the pipeline's mkfs gets), then copied into each run's fresh cache.
 */
function warmPull(kind: Compression | "5-layers", quick: boolean): Variant {
  const floor =
    kind === "gzip" ? decompressFloor("gzip -dc (floor)", "`gzip -dc BLOB > /dev/null`") : kind === "zstd" ? decompressFloor("zstd -dc (floor)", "`zstd -dc BLOB > /dev/null`") : decompressFloor("gzip -dc ×5 (floor)", "`gzip -dc` of the 5 blobs, in order");
  const pipeline = kind === "zstd" ? tarZstdPipeline : umociPipeline;
  const what = quick ? "a quarter of the Debian rootfs" : "the Debian bookworm rootfs";
  return {
    describe: kind === "5-layers" ? `${what} in 5 gzip layers with replacements, whiteouts and an opaque directory (bench/oci-fixtures.ts), pulled from an OCI layout with a warm blob cache` : `${what} as one ${kind === "gzip" ? "gzip (pigz -6)" : "zstd -3"} layer, pulled from an OCI layout with a warm blob cache`,
    prepare: async (ctx) => {
      const fx = kind === "5-layers" ? await fiveLayerFixture(quick) : await oneLayerFixture(kind, quick);
      const env: Record<string, string> = { SOURCE: `oci:${fx.layout}:${fx.tag}`, LAYOUT: fx.layout, TAG: fx.tag, LAYERS: layersEnv(fx), RUN: join(ctx.work, "run"), TEMPLATE_CACHE: "" };
      const notes: string[] = [];
      const skip: { tool: string; why: string }[] = [];
      let imageSize = fx.imageSize;
      if (ctx.tools.includes(bangerPull.name) || ctx.tools.includes(bangerPullDaemonWarm.name)) {
        try {
          const t = await templatePull({ ...ctx.env, ...env }, join(ctx.work, "template"), ctx.env.REPO!);
          env.TEMPLATE_CACHE = t.cache ?? "";
          imageSize = t.imageBytes;
          if (!t.cache) notes.push("banger's untimed first pull left no $XDG_CACHE_HOME/banger/oci: its runs started with an empty cache");
          notes.push(`the blob cache of every banger run was filled beforehand (untimed) from one banger pull; the pipeline's mkfs.ext4 gets that pull's image size, ${(t.imageBytes / 2 ** 20).toFixed(0)} MiB (the size rule on the merged tree gives ${(fx.imageSize / 2 ** 20).toFixed(0)} MiB)`);
        } catch (err) {
          skip.push({ tool: bangerPull.name, why: `the untimed pull that fills the blob cache failed: ${err instanceof Error ? err.message : String(err)}` });
        }
      } else notes.push(`banger not measured: the pipeline's mkfs.ext4 gets the size rule's ${(fx.imageSize / 2 ** 20).toFixed(0)} MiB`);
      if (kind === "zstd") notes.push("the pipeline extracts with GNU tar --zstd: Debian's umoci (0.4.7) refuses zstd layers (\"blob is not correct mediatype\")");
      return { kind: "oci", fixture: fx, env, imageSize, mkfsInodes: mkfsInodeCount(fx.stats, imageSize), notes, skip };
    },
    tools: [bangerPull, bangerPullDaemonWarm, floor, pipeline],
    skipped: [],
    timeoutS: quick ? 300 : 900,
    passSize: true,
  };
}

/**
 * A cold pull (empty cache) of the gzip image from docker-registry on 127.0.0.1 through a 50 MB/s
 * proxy. `tools`: pull-cold compares banger with skopeo and curl; daemon-pull-cold compares the
 * pull through the daemon with the same pull in-process.
 */
function coldPull(quick: boolean, tools: Tool[] = [bangerPull, skopeoCopy, curlDownload], layers: "one" | "five" = "one"): Variant {
  const what = quick ? "a quarter of the Debian rootfs" : "the Debian bookworm rootfs";
  return {
    describe: `${what} as ${layers === "one" ? "one gzip layer" : "5 gzip layers (pull-5-layers' image)"}, pulled with an empty cache from docker-registry on 127.0.0.1 through a proxy capping the link at ${LINK_RATE / 1e6} MB/s (bench/throttle-proxy.ts)`,
    prepare: async (ctx) => {
      const fx = layers === "one" ? await oneLayerFixture("gzip", quick) : await fiveLayerFixture(quick);
      const stops: (() => Promise<void>)[] = [];
      const close = async () => {
        for (const s of stops.reverse()) await s().catch(() => {});
      };
      try {
        const registry = await startRegistry(join(ctx.work, "registry"));
        stops.push(registry.stop);
        await pushLayout(fx, registry.host);
        const proxy = await startProxy(registry.host, LINK_RATE);
        stops.push(proxy.stop);
        const url = blobUrl(proxy.host, fx.layers[0]!.digest);
        const rate = await checkRate(url);
        const ref = `${proxy.host}/${COLD_REPO}:${fx.tag}`;
        return {
          kind: "oci",
          fixture: fx,
          env: { SOURCE: ref, SKOPEO_SRC: `docker://${ref}`, BLOB_URL: url, TAG: fx.tag, RUN: join(ctx.work, "run"), TEMPLATE_CACHE: "" },
          imageSize: fx.imageSize,
          mkfsInodes: null,
          notes: [`proxy checked before the runs (untimed): ${describeRate(rate)}`, layerTime(fx)],
          skip: [],
          linkRate: rate.rate,
          close,
        };
      } catch (err) {
        await close();
        throw err;
      }
    },
    tools,
    skipped: [],
    timeoutS: quick ? 300 : 900,
    passSize: false,
  };
}

/** How long the layer blobs take at the capped rate, all of them together. */
function layerTime(fx: OciFixture): string {
  const bytes = fx.layers.reduce((n, l) => n + l.bytes, 0);
  const what = fx.layers.length === 1 ? "the layer blob alone takes" : `the ${fx.layers.length} layer blobs alone take`;
  return `${what} ${(bytes / LINK_RATE).toFixed(3)} s at ${LINK_RATE / 1e6} MB/s (${(bytes / 1e6).toFixed(1)} MB)`;
}

/** `image list` end to end against a store of three images, through the daemon and in-process. */
function daemonList(quick: boolean): Variant {
  const seq = quick ? 40 : 200;
  const par = quick ? 20 : 100;
  return {
    describe: `\`image list --json\` on a store of three images: ${seq} calls one after the other and ${par} at once, through a running daemon and in-process (BANGER_NO_DAEMON=1)`,
    prepare: async (ctx) => {
      const store = join(ctx.work, "store");
      await prepareListStore(store, ctx.env);
      const env = { STORE: store };
      const stop = () => runScript(`cd "$REPO"; export XDG_STATE_HOME="$STORE/state" XDG_CACHE_HOME="$STORE/cache" XDG_CONFIG_HOME="$STORE/config" XDG_RUNTIME_DIR="$STORE/runtime" HOME="$STORE/home"; "$BUN" run --silent banger daemon stop > /dev/null`, { ...ctx.env, ...env }, ctx.env.REPO!);
      return { kind: "store", env, notes: ["the store: three images pulled (in-process, untimed) from small rootfs tars; every call's output is compared with `image list --json` of that store"], close: stop };
    },
    tools: listTools(seq, par),
    skipped: [],
    timeoutS: 600,
    passSize: false,
  };
}

export const PULL_CASES = ["pull-gzip", "pull-zstd", "pull-5-layers", "pull-cold", "pull-cold-5-layers"];
export const DAEMON_CASES = ["daemon-list", "daemon-pull-cold"];

export const CASES: CaseDef[] = [
  {
    name: "debian",
    title: "Debian bookworm rootfs (real, ../shared/fixtures/debian-rootfs.sh)",
    full: {
      describe: "the real Debian bookworm minbase rootfs tar (systemd, sshd, sudo, ...)",
      prepare: async () => ({ kind: "tar", tar: await debianRootfs() }),
      tools: TAR_TOOLS,
      skipped: [],
      timeoutS: 900,
      passSize: true,
    },
    // The real rootfs is already small: the quick variant is the same input, run once.
    quick: {
      describe: "the real Debian bookworm minbase rootfs tar (systemd, sshd, sudo, ...)",
      prepare: async () => ({ kind: "tar", tar: await debianRootfs() }),
      tools: TAR_TOOLS,
      skipped: [],
      timeoutS: 300,
      passSize: true,
    },
  },
  { name: "files-1m", title: "1,000,000 small files in 1,000 directories", full: filesVariant(1_000_000, 1000, 2400), quick: filesVariant(10_000, 100, 300) },
  { name: "files-100k-one-dir", title: "100,000 files in one directory", full: filesVariant(100_000, 1, 1200), quick: filesVariant(5_000, 1, 300) },
  { name: "file-8g", title: "one 8 GiB file of non-zero data", full: bigVariant(8 * GiB, 1800), quick: bigVariant(64 * 2 ** 20, 300) },
  { name: "zero-100g", title: "one 100 GiB file, almost all zeros, streamed (never stored)", full: zeroVariant(100 * GiB, 64, 1800), quick: zeroVariant(2 * GiB, 16, 300) },
  { name: "pull-gzip", title: "image pull, warm: Debian rootfs as one gzip layer (OCI layout)", full: warmPull("gzip", false), quick: warmPull("gzip", true) },
  { name: "pull-zstd", title: "image pull, warm: Debian rootfs as one zstd layer (OCI layout)", full: warmPull("zstd", false), quick: warmPull("zstd", true) },
  { name: "pull-5-layers", title: "image pull, warm: Debian rootfs in 5 layers with whiteouts (OCI layout)", full: warmPull("5-layers", false), quick: warmPull("5-layers", true) },
  { name: "pull-cold", title: "image pull, cold: one gzip layer from docker-registry at 50 MB/s", full: coldPull(false), quick: coldPull(true) },
  {
    name: "pull-cold-5-layers",
    title: "image pull, cold: 5 gzip layers from docker-registry at 50 MB/s",
    // curl fetches one blob: no floor for five.
    full: coldPull(false, [bangerPull, skopeoCopy], "five"),
    quick: coldPull(true, [bangerPull, skopeoCopy], "five"),
  },
  { name: "daemon-list", title: "daemon: `image list` end to end, one after the other and all at once", full: daemonList(false), quick: daemonList(true) },
  {
    name: "daemon-pull-cold",
    title: "daemon: cold pull through the daemon vs in-process (pull-cold's registry at 50 MB/s)",
    full: coldPull(false, [bangerPullDaemon, bangerPullInProcess, curlDownload]),
    quick: coldPull(true, [bangerPullDaemon, bangerPullInProcess, curlDownload]),
  },
];
