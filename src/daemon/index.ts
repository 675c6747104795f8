// src/daemon: the services banger runs (ImageService, KernelService; VMService later), the store
// behind them, the one function that puts them together from the environment, and the daemon
// that serves them on a unix socket. Its client is its own entry point,
// src/daemon/client/index.ts, so that commands talking to the daemon load none of this.
export { createServices, type Services, type ServiceOverrides } from "./compose.ts";
export { bangerPaths, type BangerPaths, type Env } from "./paths.ts";
export { SqliteImageStore, NameTakenError, StoreError, SCHEMA_VERSION, type ImageRecord, type ImageStore } from "./store.ts";
export {
  ImageService,
  ImageError,
  ImageNotFoundError,
  ImagePullAbortedError,
  type ImageServiceOptions,
  type PullRequest,
  type ReconcileReport,
} from "./image-service.ts";
export {
  KernelService,
  KernelError,
  KernelNotFoundError,
  KernelInUseError,
  type KernelServiceOptions,
  type RegisterRequest,
  type KernelPullRequest,
  type KernelPullEvent,
  type KernelPullListener,
  type KernelReconcileReport,
} from "./kernel-service.ts";
export { SqliteKernelStore, KernelNameTakenError, type KernelRecord, type KernelStore, type KernelUser } from "./kernel-store.ts";
export { loadKernelCatalog, parseKernelCatalog, type CatalogKernel } from "./kernel-catalog.ts";
export { defaultImageName, nameProblem, openSource, sanitizeName } from "./image-names.ts";
export { listExt4Dir, modeString, type ImageDirEntry } from "./image-ls.ts";
export { buildRootfs, type BuildRequest, type BuildResult, type RootfsBuilderFn } from "./build-image.ts";
export type { PullEvent, PullListener, PullPhase } from "./events.ts";
export { JsonLinesLogger, LineLogger, silentLogger, formatLogLine, readLog, type Logger, type LogFields } from "./log.ts";
export { localImageApi } from "./local-api.ts";
export { pruneCache } from "./prune.ts";
export { startDaemon, DaemonRunningError, type DaemonOptions, type RunningDaemon } from "./daemon.ts";
export { OWN_VERSION, PROTOCOL, type ImageApi, type VersionInfo } from "./protocol.ts";
