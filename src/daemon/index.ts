// src/daemon: the services banger runs (ImageService now; KernelService and VMService later),
// the store behind them and the one function that puts them together from the environment.
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
export { defaultImageName, nameProblem, openSource, sanitizeName } from "./image-names.ts";
export { listExt4Dir, modeString, type ImageDirEntry } from "./image-ls.ts";
export { buildRootfs, type BuildRequest, type BuildResult, type RootfsBuilderFn } from "./build-image.ts";
export type { PullEvent, PullListener, PullPhase } from "./events.ts";
