// How commands reach the image services: through the daemon (started on demand when none
// answers: daemon-spawn.ts), or in this process with BANGER_NO_DAEMON=1.
import { DaemonClient, bangerPaths, type ImageApi } from "../daemon/client/index.ts";
import type { EnvSettings } from "./env.ts";

/** A daemon started on demand stops after this long without a client (`banger daemon start` has no limit). */
export const ON_DEMAND_IDLE_EXIT = "15m";

/** The image API for a command: the daemon's (started on demand), or in-process with BANGER_NO_DAEMON=1. */
export async function openImageApi(o: { quiet: boolean; settings: EnvSettings }): Promise<{ api: ImageApi; close(): void }> {
  if (o.settings.noDaemon) {
    // Loaded on demand: a command talking to the daemon loads none of the services.
    const { createServices, localImageApi, LineLogger, silentLogger } = await import("../daemon/index.ts");
    const services = createServices(process.env, {
      logger: o.quiet ? silentLogger : new LineLogger((m) => console.error(m)),
      buildSettings: { io: o.settings.io, timing: o.settings.timing },
    });
    try {
      // What killed pulls left behind is cleared first, as the daemon does when it starts.
      await services.images.reconcile();
    } catch (err) {
      services.close();
      throw err;
    }
    return { api: localImageApi(services), close: () => services.close() };
  }
  const paths = bangerPaths(process.env);
  const client = new DaemonClient({
    socket: paths.socketPath,
    onUnavailable: async () => void (await (await import("./daemon-spawn.ts")).ensureDaemon(paths, { idleExit: ON_DEMAND_IDLE_EXIT })),
  });
  return { api: client, close: () => {} };
}
