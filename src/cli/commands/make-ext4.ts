import { parseArgs, option, parseSize, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import type { Stats } from "node:fs";
import type { LoadedRootfs } from "../../tar/index.ts";
import { lenientSourceDateEpoch, readEnvSettings } from "../env.ts";

const options = [
  { name: "rootfs-tar", value: true, required: true, description: "rootfs tar to convert (PAX/GNU/ustar); - reads standard input" },
  { name: "out", value: true, required: true, description: "ext4 image to write; replaced atomically, never left half-written" },
  { name: "size", value: true, description: "image size (4096, 512M, 2G, ... at most 16T); default max(1G, used x 1.25)" },
  { name: "uuid", value: true, description: "filesystem UUID; default derived from the input" },
  { name: "label", value: true, description: "volume label (at most 16 bytes)" },
  { name: "no-metadata-csum", value: false, description: "leave out metadata_csum, for kernels older than 3.18" },
];

export const makeExt4Command: Command = {
  path: ["internal", "make-ext4"],
  summary: "write an ext4 image from a rootfs tar, in-process (no mkfs, no root)",
  usage: "banger internal make-ext4 --rootfs-tar <file|-> --out <image> [--size <n>]",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const input = option(args, "rootfs-tar")!;
    const out = option(args, "out")!;
    const sizeText = option(args, "size");
    const size = sizeText === undefined ? undefined : parseSize(sizeText);
    // Loaded here, not at the top: every command loads this module's definition (COMMANDS).
    const fs = await import("node:fs");
    refuseOutputOverInput(fs, input, out);
    const settings = readEnvSettings(process.env);
    // The image file exists (unnamed) before the tar is read, so each file's data is written
    // into it from the bytes just read, overlapping the read and the planning.
    // Loaded here, not at the top: `banger` starts every command, and each pays only for its own modules.
    const [{ loadRootfsTar }, { Ext4ImageWriter }] = await Promise.all([import("../../tar/index.ts"), import("../../ext4/index.ts")]);
    const writer = Ext4ImageWriter.open({
      out,
      size,
      uuid: option(args, "uuid"),
      label: option(args, "label"),
      metadataCsum: !args.flags.has("no-metadata-csum"),
      timestamp: lenientSourceDateEpoch(settings.sourceDateEpoch),
      likelyDataBytes: input === "-" ? undefined : fileSize(fs, input),
      io: settings.io,
      timing: settings.timing,
    });
    let loaded: LoadedRootfs | null = null;
    try {
      const t0 = performance.now();
      const cpu0 = process.cpuUsage();
      loaded = await loadRootfsTar(input, {
        spoolNear: out,
        io: settings.io,
        fileDataSink: (source, spool) => writer.fileDataSink(source, spool),
      });
      const timing = settings.timing;
      if (timing) {
        const cpu = process.cpuUsage(cpu0);
        timing(`start-up (runtime, modules, image file): ${t0.toFixed(0)} ms wall, ${((cpu0.user + cpu0.system) / 1000).toFixed(0)} ms cpu`);
        timing(`tar read (file data written meanwhile): ${(performance.now() - t0).toFixed(0)} ms wall, ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms cpu`);
        if (loaded.spooledBytes !== undefined) timing(`standard input spooled: ${(loaded.spooledBytes / 1048576).toFixed(1)} MiB`);
      }
      const stats = await writer.finish(loaded.root, loaded.sources, loaded.identity);
      console.error(
        `wrote ${out}: ${stats.inodesUsed} inodes, ${(stats.blocksUsed * 4096 / 1048576).toFixed(1)} MiB used of ${(stats.sizeBytes / 1048576).toFixed(0)} MiB`,
      );
      return 0;
    } catch (err) {
      await writer.discard();
      throw err;
    } finally {
      loaded?.cleanup();
    }
  },
};

type Fs = typeof import("node:fs");

function fileSize(fs: Fs, path: string): number | undefined {
  try {
    return fs.statSync(path).size;
  } catch {
    return undefined; // the tar reader reports a missing input with its own message
  }
}

/**
 * The image replaces `out` only once complete, so an `out` that is the input itself (by any
 * name: the same path, a symlink, a hardlink, or standard input redirected from it) would be
 * read while its replacement is written and then lost. Refused before anything is written.
 */
function refuseOutputOverInput(fs: Fs, input: string, out: string): void {
  let outStat: Stats;
  try {
    outStat = fs.statSync(out);
  } catch {
    return; // no such file yet: nothing to overwrite
  }
  let inStat: Stats;
  try {
    inStat = input === "-" ? fs.fstatSync(0) : fs.statSync(input);
  } catch {
    return; // the tar reader reports a missing input with its own message
  }
  if (inStat.dev === outStat.dev && inStat.ino === outStat.ino) {
    const what = input === "-" ? "standard input" : `the input ${input}`;
    throw new Error(`--out ${out} is ${what} (the same file): writing the image would destroy the input`);
  }
}
