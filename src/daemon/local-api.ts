// The image API of protocol.ts on services in this process: what a command uses with
// BANGER_NO_DAEMON=1, the same calls the daemon's routes make, so both ways print the same.
import type { Services } from "./compose.ts";
import type { ImageApi } from "./protocol.ts";
import { pruneCache } from "./prune.ts";

export function localImageApi(s: Services): ImageApi {
  return {
    pull: (params, opts) => s.images.pull({ ...params, signal: opts.signal, progress: opts.progress, ...(opts.stdin && { stdin: opts.stdin }) }),
    list: async () => s.images.list(),
    show: async (ref) => s.images.show(ref),
    remove: (ref) => s.images.remove(ref),
    ls: async (ref, dirPath) => s.images.ls(ref, dirPath),
    prune: (p) => pruneCache(s.cache, p),
  };
}
