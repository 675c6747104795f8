// banger image cache prune: the daemon's blob cache through the daemon (which refuses --all
// while pulls run), or the cache given with --cache-dir, or everything in-process with
// BANGER_NO_DAEMON=1.
import { parseArgs, option, UsageError } from "../args.ts";
import type { Command } from "../command.ts";
import type { PruneParams, PruneReply } from "../../daemon/protocol.ts";
import { readEnvSettings } from "../env.ts";

const options = [
  { name: "cache-dir", value: true, description: "blob cache to prune (default $XDG_CACHE_HOME/banger/oci, through the daemon)" },
  { name: "all", value: false, description: "forget every recorded image first, so every blob goes" },
  { name: "dry-run", value: false, description: "list what would be removed, remove nothing" },
];

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

async function prune(cacheDir: string | undefined, params: PruneParams): Promise<PruneReply> {
  if (cacheDir !== undefined) {
    const [{ BlobCache }, { pruneCache }] = await Promise.all([import("../../oci/index.ts"), import("../../daemon/prune.ts")]);
    return pruneCache(new BlobCache(cacheDir), params);
  }
  const { openImageApi } = await import("../daemon-start.ts");
  const { api, close } = await openImageApi({ quiet: false, settings: readEnvSettings(process.env) });
  try {
    return await api.prune(params);
  } finally {
    close();
  }
}

export const imageCachePruneCommand: Command = {
  path: ["image", "cache", "prune"],
  summary: "remove cached blobs that no recorded image needs, and abandoned partial downloads",
  usage: "banger image cache prune [--all] [--dry-run] [--cache-dir <dir>]",
  options,
  async run(argv) {
    const args = parseArgs(argv, options);
    if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
    const dryRun = args.flags.has("dry-run");
    const reply = await prune(option(args, "cache-dir"), { all: args.flags.has("all"), dryRun });
    if (reply.missing) {
      console.error(`no blob cache at ${reply.cacheRoot}; nothing to prune`);
      return 0;
    }
    if (args.flags.has("all") && !dryRun) console.error(`forgot ${reply.forgot} recorded image${reply.forgot === 1 ? "" : "s"}`);
    const { result } = reply;
    for (const d of result.removed) console.log(`${dryRun ? "would remove" : "removed"} ${d}`);
    console.error(
      `${dryRun ? "would free" : "freed"} ${mib(result.freedBytes)} in ${reply.cacheRoot}: ${result.removed.length} blob(s) ${dryRun ? "unneeded" : "removed"}, ${result.kept} kept`,
    );
    return 0;
  },
};
