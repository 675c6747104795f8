import { existsSync } from "node:fs";
import { parseArgs, option, UsageError } from "../args.ts";
import type { Command } from "../command.ts";

const options = [
  { name: "cache-dir", value: true, description: "blob cache to prune (default $XDG_CACHE_HOME/banger/oci)" },
  { name: "all", value: false, description: "forget every recorded image first, so every blob goes" },
  { name: "dry-run", value: false, description: "list what would be removed, remove nothing" },
];

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

export const imageCachePruneCommand: Command = {
  path: ["image", "cache", "prune"],
  summary: "remove cached blobs that no recorded image needs, and abandoned partial downloads",
  usage: "banger image cache prune [--all] [--dry-run] [--cache-dir <dir>]",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const { BlobCache, defaultCacheDir } = await import("../../oci/index.ts"); // see make-ext4.ts
    const cache = new BlobCache(option(args, "cache-dir") ?? defaultCacheDir(process.env));
    const dryRun = args.flags.has("dry-run");
    if (!existsSync(cache.root)) {
      console.error(`no blob cache at ${cache.root}; nothing to prune`);
      return 0;
    }
    if (args.flags.has("all") && !dryRun) {
      const n = await cache.removeRefs();
      console.error(`forgot ${n} recorded image${n === 1 ? "" : "s"}`);
    }
    // --all also drops the grace period that protects blobs of pulls running right now.
    const all = args.flags.has("all");
    const result = await cache.prune({ dryRun, graceMs: all ? 0 : undefined, keepNothing: all });
    for (const d of result.removed) console.log(`${dryRun ? "would remove" : "removed"} ${d}`);
    console.error(
      `${dryRun ? "would free" : "freed"} ${mib(result.freedBytes)} in ${cache.root}: ${result.removed.length} blob(s) ${dryRun ? "unneeded" : "removed"}, ${result.kept} kept`,
    );
    return 0;
  },
};
