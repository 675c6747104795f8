// The one place the daemon's services are put together, once: by the daemon at its start-up
// (daemon.ts), by a command running in-process (BANGER_NO_DAEMON=1), and by tests, which build
// the same graph. It takes the process environment (for the XDG directories, the Docker
// credentials and BANGER_IMAGE_CATALOG) and the settings the caller resolved from it
// (src/cli/env.ts); everything below takes options.
import { BlobCache, dockerConfigCredentials, type SourceOptions } from "../oci/index.ts";
import path from "node:path";
import { GUEST_ASSETS } from "../inject/index.ts";
import { buildRootfs, type BuildSettings, type RootfsBuilderFn } from "./build-image.ts";
import { ImageService } from "./image-service.ts";
import { loadKernelCatalog } from "./kernel-catalog.ts";
import { KernelService } from "./kernel-service.ts";
import { SqliteKernelStore } from "./kernel-store.ts";
import { bangerPaths, type BangerPaths, type Env } from "./paths.ts";
import { loadCatalog } from "./catalog.ts";
import { silentLogger, type Logger } from "./log.ts";
import { ensureSshKey } from "./ssh-key.ts";
import { SqliteImageStore } from "./store.ts";

export interface Services {
  paths: BangerPaths;
  store: SqliteImageStore;
  cache: BlobCache;
  images: ImageService;
  kernels: KernelService;
  logger: Logger;
  close(): void;
}

export interface ServiceOverrides {
  build?: RootfsBuilderFn;
  /** I/O settings and timing lines for every image build. */
  buildSettings?: BuildSettings;
  sourceOptions?: SourceOptions;
  /** Where the services report what they did (reconcile, cleanup failures); default nowhere. */
  logger?: Logger;
  /** An image catalog file in place of the embedded one (default: $BANGER_IMAGE_CATALOG). */
  imageCatalogFile?: string;
  /** A kernel catalog file in place of the embedded one (the CLI passes BANGER_KERNEL_CATALOG). */
  kernelCatalogFile?: string;
  /** Keep a layer worker booted between pulls (the daemon). */
  warmLayerWorker?: boolean;
}

export function createServices(env: Env, overrides: ServiceOverrides = {}): Services {
  const paths = bangerPaths(env);
  const store = SqliteImageStore.open(paths.dbPath);
  const cache = new BlobCache(paths.blobCacheDir);
  const sourceOptions: SourceOptions = {
    credentials: dockerConfigCredentials({ env }),
    ...overrides.sourceOptions,
  };
  // The SSH key is made at the first pull that needs it, not when any command starts.
  const guest = { assets: GUEST_ASSETS, authorizedKeys: async () => (await ensureSshKey(path.join(paths.configDir, "ssh"))).publicKey };
  const logger = overrides.logger ?? silentLogger;
  const log = (m: string) => logger.info(m);
  const kernelStore = new SqliteKernelStore(store.database);
  const catalog = { images: loadCatalog(overrides.imageCatalogFile ?? (env.BANGER_IMAGE_CATALOG || undefined)), bundleDir: path.join(paths.cacheDir, "bundles") };
  const kernelLookup = { find: (ref: string) => kernelStore.find(ref) };
  const images = new ImageService({ paths, store, cache, build: overrides.build ?? buildRootfs, buildSettings: overrides.buildSettings, sourceOptions, log, guest, catalog, kernels: kernelLookup, warmLayerWorker: overrides.warmLayerWorker });
  const kernels = new KernelService({ paths, store: kernelStore, catalog: () => loadKernelCatalog(overrides.kernelCatalogFile), log });
  return { paths, store, cache, images, kernels, logger, close: () => store.close() };
}
