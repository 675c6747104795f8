// `banger image cache prune`: forget every recorded reference first (--all), then remove the
// blobs no reference needs and what dead downloads left. One function for the daemon's route and
// for a command run in-process or on another cache (--cache-dir).
import fs from "node:fs";
import type { BlobCache } from "../oci/index.ts";
import type { PruneParams, PruneReply } from "./protocol.ts";

export async function pruneCache(cache: BlobCache, p: PruneParams): Promise<PruneReply> {
  if (!fs.existsSync(cache.root)) return { forgot: 0, result: { removed: [], freedBytes: 0, kept: 0 }, cacheRoot: cache.root, missing: true };
  const forgot = p.all && !p.dryRun ? await cache.removeRefs() : 0;
  // --all also drops the grace period that protects blobs of pulls running right now.
  const result = await cache.prune({ dryRun: p.dryRun, graceMs: p.all ? 0 : undefined, keepNothing: p.all });
  return { forgot, result, cacheRoot: cache.root };
}
