// banger image pull | list | show | rm | ls: through the daemon (started on demand), or in this
// process with BANGER_NO_DAEMON=1 (src/cli/daemon-start.ts). Either way the command calls the
// same ImageApi and prints the same things: progress from the same events, errors with the
// same text.
import { parseArgs, option, parseSize, UsageError, type ParsedArgs } from "../args.ts";
import type { Command } from "../command.ts";
import type { ImageApi, ImageDirEntry, ImageRecord } from "../../daemon/protocol.ts";
import { readEnvSettings, strictSourceDateEpoch, type EnvSettings } from "../env.ts";
import { table } from "../format.ts";

const json = { name: "json", value: false, description: "print JSON on stdout instead of text" };

/** Opens the image API (loaded on demand: each command pays only for its own modules), runs `fn`. */
async function withImages<T>(quiet: boolean, fn: (api: ImageApi) => Promise<T>, settings: EnvSettings = readEnvSettings(process.env)): Promise<T> {
  const { openImageApi } = await import("../daemon-start.ts");
  const { api, close } = await openImageApi({ quiet, settings });
  try {
    return await fn(api);
  } finally {
    close();
  }
}

/** Errors keep their class's name across the socket: compared by name, not by class. */
function named(err: unknown, name: string): err is Error {
  return err instanceof Error && err.name === name;
}

function positionals(args: ParsedArgs, min: number, max: number, what: string): string[] {
  if (args.positionals.length < min) throw new UsageError(`missing ${what}`);
  if (args.positionals.length > max) throw new UsageError(`unexpected argument "${args.positionals[max]}"`);
  return args.positionals;
}

const pullOptions = [
  { name: "name", value: true, description: "image name (default from the source, e.g. debian-bookworm)" },
  { name: "size", value: true, description: "rootfs size (512M, 2G, ...); default max(1G, used x 1.25)" },
  { name: "platform", value: true, description: "os/arch[/variant] to pull, e.g. linux/arm64 (default: the host's)" },
  { name: "kernel-ref", value: true, description: "a stored kernel (banger kernel list) to boot with; its virtio and vsock modules go into the image" },
  { name: "kernel", value: true, description: "a kernel file to register and boot with, when neither --kernel-ref nor a catalog image names one" },
  { name: "initrd", value: true, description: "with --kernel: its initrd" },
  { name: "modules", value: true, description: "with --kernel: its lib/modules/<version> tree" },
  { name: "quiet", value: false, description: "print nothing but errors" },
  { ...json, description: "print the image record as JSON on stdout when done" },
];

export const imagePullCommand: Command = {
  path: ["image", "pull"],
  summary: "pull an image and build its ext4 root filesystem into the store",
  usage: "banger image pull <source> [--name N] [--size S] [--platform os/arch[/variant]] [--kernel-ref K | --kernel F [--initrd F] [--modules D]] [--quiet] [--json]\n" +
    "  source: a registry reference (debian:bookworm, 127.0.0.1:5000/x/y@sha256:...), oci:DIR[:TAG],\n" +
    "          docker-archive:FILE[:REPO:TAG], rootfs:FILE (a rootfs tar), or - (a rootfs tar on stdin)",
  options: pullOptions,
  async run(argv) {
    const args = parseArgs(argv, pullOptions);
    const [source] = positionals(args, 1, 1, "<source> (e.g. debian:bookworm or rootfs:FILE)");
    const sizeText = option(args, "size");
    const sizeBytes = sizeText === undefined ? undefined : parseSize(sizeText);
    const quiet = args.flags.has("quiet");
    const settings = readEnvSettings(process.env);
    // Superblock times; invalid values are refused, not ignored.
    const timestamp = strictSourceDateEpoch(settings.sourceDateEpoch);
    const [{ parsePlatform }, { pickRenderer }] = await Promise.all([import("../../oci/platform.ts"), import("../progress.ts")]);
    const platformText = option(args, "platform");
    let platform;
    try {
      platform = platformText === undefined ? undefined : parsePlatform(platformText);
    } catch (err) {
      throw new UsageError(err instanceof Error ? err.message : String(err));
    }
    const kernelRef = option(args, "kernel-ref");
    const kernelFile = option(args, "kernel");
    if (kernelFile === undefined && (option(args, "initrd") !== undefined || option(args, "modules") !== undefined)) throw new UsageError("--initrd and --modules go with --kernel");
    // The lowest rung of the kernel precedence (--kernel-ref, then a catalog image's kernel_ref,
    // then these files): the files are registered as a kernel, which the pull falls back to.
    const kernelFallbackRef = kernelFile === undefined || kernelRef !== undefined ? undefined : await registerKernelFiles(kernelFile, option(args, "initrd"), option(args, "modules"), quiet);
    const params = { source: source!, name: option(args, "name"), sizeBytes, platform, timestamp, cwd: process.cwd(), ...(kernelRef !== undefined && { kernelRef }), ...(kernelFallbackRef !== undefined && { kernelFallbackRef }) };
    return withImages(quiet, async (images) => {
      const renderer = pickRenderer({ quiet, stream: () => process.stderr });
      const ac = new AbortController();
      let interrupts = 0;
      // 128 + the signal number, as a shell reports a process killed by it.
      let exitCode = 130;
      const onSignal = (signal: NodeJS.Signals) => {
        exitCode = signal === "SIGTERM" ? 143 : 130;
        // The second Ctrl-C does not wait for the cleanup.
        if (++interrupts > 1) process.exit(exitCode);
        ac.abort(new Error(`${signal} received`));
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      try {
        const stdin = settings.noDaemon ? undefined : await stdinForDaemon(source!);
        const rec = await images.pull(params, { signal: ac.signal, progress: (e) => renderer.event(e), stdin });
        renderer.done();
        if (args.flags.has("json")) console.log(JSON.stringify(rec));
        else if (!quiet) console.log(`pulled ${rec.name} (${rec.id}): ${rec.platform}, ${formatSize(rec.sizeBytes)}, ${rec.rootfsPath}`);
        return 0;
      } catch (err) {
        renderer.done();
        if (named(err, "ImagePullAbortedError")) {
          console.error(`banger image pull: ${err.message}`);
          // A source still reading (stdin, a socket) would keep the process alive: the cleanup is
          // done, so leave once main has set the exit code.
          setTimeout(() => process.exit(exitCode), 100).unref();
          return exitCode;
        }
        throw err;
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
    }, settings);
  },
};

/**
 * A rootfs tar on standard input goes to the daemon as the request's body, read as it comes
 * (the pipe grown to 1 MiB first, as an in-process pull does); the daemon spools it.
 */
async function stdinForDaemon(source: string): Promise<ReadableStream<Uint8Array> | undefined> {
  const { readsStdin } = await import("../../daemon/protocol.ts");
  if (!readsStdin(source)) return undefined;
  const { standardInput } = await import("../../io/pipe.ts");
  const input = standardInput({ blocking: false });
  return input instanceof ReadableStream ? input : undefined;
}

function formatSize(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}


const listOptions = [json];

export const imageListCommand: Command = {
  path: ["image", "list"],
  summary: "list the images in the store",
  usage: "banger image list [--json]",
  options: listOptions,
  async run(argv) {
    const args = parseArgs(argv, listOptions);
    positionals(args, 0, 0, "");
    return withImages(false, async (images) => {
      const all = await images.list();
      if (args.flags.has("json")) {
        console.log(JSON.stringify(all));
        return 0;
      }
      const rows = [["NAME", "ID", "PLATFORM", "SIZE", "CREATED", "SOURCE"]];
      for (const r of all) rows.push([r.name, r.id, r.platform, formatSize(r.sizeBytes), r.createdAt.replace("T", " ").replace(/\.\d+Z$/, "Z"), r.source]);
      console.log(table(rows));
      return 0;
    });
  },
};

const showOptions = [json];

function showText(r: ImageRecord): string {
  const list = (v: string[] | null) => (v === null ? "-" : JSON.stringify(v));
  const rows: [string, string][] = [
    ["name", r.name],
    ["id", r.id],
    ["source", r.source],
    ["digest", r.digest],
    ["platform", r.platform],
    ["rootfs", r.rootfsPath],
    ["size", `${formatSize(r.sizeBytes)} (${r.sizeBytes} bytes)`],
    ["created", r.createdAt],
    ["entrypoint", list(r.entrypoint)],
    ["cmd", list(r.cmd)],
    ["workingDir", r.workingDir || "-"],
    ["user", r.user || "-"],
    ["init", r.init ?? "-"],
    ["cmdline", r.kernelCmdline ?? "-"],
    ["work seed", r.workSeedPath ?? "-"],
    ["kernel", r.kernelRef ?? "-"],
  ];
  const lines = rows.map(([k, v]) => `${(k + ":").padEnd(12)}${v}`);
  const block = (key: string, values: string[]) => lines.push(`${(key + ":").padEnd(12)}${values.length ? values[0] : "-"}`, ...values.slice(1).map((e) => " ".repeat(12) + e));
  block("env", r.env);
  block("injected", r.injected);
  return lines.join("\n");
}

export const imageShowCommand: Command = {
  path: ["image", "show"],
  summary: "show one image's record: source, digest, platform, rootfs file, config",
  usage: "banger image show <name|id> [--json]",
  options: showOptions,
  async run(argv) {
    const args = parseArgs(argv, showOptions);
    const [ref] = positionals(args, 1, 1, "<name|id>");
    return withImages(false, async (images) => {
      const rec = await images.show(ref!);
      console.log(args.flags.has("json") ? JSON.stringify(rec) : showText(rec));
      return 0;
    });
  },
};

const rmOptions = [{ name: "quiet", value: false, description: "print nothing but errors" }];

export const imageRmCommand: Command = {
  path: ["image", "rm"],
  summary: "remove images (their rootfs files and records)",
  usage: "banger image rm <name|id>...",
  options: rmOptions,
  async run(argv) {
    const args = parseArgs(argv, rmOptions);
    const refs = positionals(args, 1, Infinity, "<name|id>");
    const quiet = args.flags.has("quiet");
    return withImages(quiet, async (images) => {
      // All found first, so a typo in the third name removes nothing.
      const recs: ImageRecord[] = [];
      for (const r of refs) recs.push(await images.show(r));
      for (const rec of recs) {
        await images.remove(rec.id);
        if (!quiet) console.log(`removed ${rec.name} (${rec.id})`);
      }
      return 0;
    });
  },
};

const lsOptions = [json];

function lsText(entries: ImageDirEntry[]): string {
  const owners = entries.map((e) => `${e.uid}/${e.gid}`);
  const sizes = entries.map((e) => String(e.size));
  const ow = Math.max(0, ...owners.map((o) => o.length));
  const sw = Math.max(0, ...sizes.map((s) => s.length));
  return entries.map((e, i) => `${e.modeString} ${owners[i]!.padEnd(ow)} ${sizes[i]!.padStart(sw)} ${e.name}${e.target !== undefined ? ` -> ${e.target}` : ""}`).join("\n");
}

export const imageLsCommand: Command = {
  path: ["image", "ls"],
  summary: "list a directory inside an image's root filesystem (read directly, no mount)",
  usage: "banger image ls <name|id> [PATH] [--json]",
  options: lsOptions,
  async run(argv) {
    const args = parseArgs(argv, lsOptions);
    const [ref, dir = "/"] = positionals(args, 1, 2, "<name|id>");
    return withImages(false, async (images) => {
      const entries = await images.ls(ref!, dir);
      if (args.flags.has("json")) console.log(JSON.stringify(entries));
      else if (entries.length) console.log(lsText(entries));
      return 0;
    });
  },
};

export const imageCommands: Command[] = [imagePullCommand, imageListCommand, imageShowCommand, imageRmCommand, imageLsCommand];

/**
 * Registers kernel files for a pull (`--kernel`), named by the kernel file's digest so the same
 * files pulled twice reuse one stored kernel. Returns the kernel's name.
 */
async function registerKernelFiles(kernel: string, initrd: string | undefined, modules: string | undefined, quiet: boolean): Promise<string> {
  const fs = await import("node:fs");
  let digest: string;
  try {
    digest = new Bun.CryptoHasher("sha256").update(fs.readFileSync(kernel)).digest("hex");
  } catch (err) {
    throw new Error(`--kernel ${kernel}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const name = `kernel-${digest.slice(0, 12)}`;
  const { createServices, LineLogger, silentLogger } = await import("../../daemon/index.ts");
  const services = createServices(process.env, { logger: quiet ? silentLogger : new LineLogger((m) => console.error(m)) });
  try {
    const known = services.kernels.list().find((k) => k.name === name);
    if (!known) await services.kernels.register({ name, kernel, ...(initrd !== undefined && { initrd }), ...(modules !== undefined && { modules }) });
    return name;
  } finally {
    services.close();
  }
}
