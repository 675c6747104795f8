// What the CLI and the daemon say to each other: JSON over HTTP on the daemon's unix socket,
// every route under /v1/. Shared by the server (server.ts) and the client (client/index.ts),
// and light on purpose (types, constants, small pure functions): the client's bundle loads
// this and none of the services.
//
//   GET    /v1/health                         HealthInfo (any version may ask)
//   POST   /v1/shutdown                       {pid}; the daemon stops (any version may ask)
//   GET    /v1/images                         ImageRecord[]
//   GET    /v1/images/<ref>                   ImageRecord
//   DELETE /v1/images/<ref>                   ImageRecord (the removed one)
//   GET    /v1/images/<ref>/files?path=P      ImageDirEntry[]
//   POST   /v1/images/pull?params=<PullParams JSON>
//          body: the rootfs tar when the source is `-` (stdin), else empty
//          response: newline-delimited JSON, PullLine per line; the last is "result" or "error"
//   GET    /v1/operations/<id>?waitMs=N       OperationState (waits up to N ms for the end)
//   POST   /v1/cache/prune                    PruneParams -> PruneReply
//
// Errors: a non-2xx status with {"error": WireError}; in a stream, its last line. The error's
// name and message are the service's own, so the CLI prints the same line as in-process.
import pkg from "../../package.json" with { type: "json" };
import type { PruneResult } from "../oci/index.ts";
import type { PullEvent } from "./events.ts";
import type { ImageDirEntry } from "./image-ls.ts";
import type { PullRequest } from "./image-service.ts";
import type { ImageRecord } from "./store.ts";

/** Bumped whenever a route or a message shape changes incompatibly. */
export const PROTOCOL = 1;

export interface VersionInfo {
  /** package.json's version. */
  version: string;
  protocol: number;
}

export const OWN_VERSION: VersionInfo = { version: pkg.version, protocol: PROTOCOL };

/** Request header: the client's version ("0.1.0/1"). */
export const CLIENT_HEADER = "banger-client";
/** Response header on every answer: the daemon's version. */
export const DAEMON_HEADER = "banger-daemon";

export function versionTag(v: VersionInfo): string {
  return `${v.version}/${v.protocol}`;
}

export function parseVersionTag(text: string | null): VersionInfo | null {
  const m = text === null ? null : /^([^/\s]+)\/(\d+)$/.exec(text);
  return m ? { version: m[1]!, protocol: Number(m[2]) } : null;
}

export function sameVersion(a: VersionInfo, b: VersionInfo): boolean {
  return a.version === b.version && a.protocol === b.protocol;
}

export function describeVersion(v: VersionInfo): string {
  return `${v.version} (protocol ${v.protocol})`;
}

/** The one message for a CLI and a daemon that do not match, whichever side notices. */
export function versionMismatchMessage(daemon: VersionInfo, client: VersionInfo): string {
  return `the running daemon is version ${describeVersion(daemon)}, this CLI is ${describeVersion(client)}; restart it with "banger daemon stop" (it restarts on the next command)`;
}

export interface WireError {
  /** The error class's name (ImageNotFoundError, ImagePullAbortedError, ...). */
  name: string;
  message: string;
}

export function wireError(err: unknown): WireError {
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: "Error", message: String(err) };
}

export interface HealthInfo extends VersionInfo {
  pid: number;
  socket: string;
  /** ISO 8601 */
  startedAt: string;
  /** Operations (pulls) running now. */
  operations: number;
  /** Exits after this long without a client; null: never. */
  idleExitMs: number | null;
  log: string;
}

/**
 * A pull as it crosses the socket: the request's fields the CLI resolved (source, name, size,
 * platform, SOURCE_DATE_EPOCH, working directory, kernels), nothing of the CLI's process.
 */
export interface PullParams extends Omit<PullRequest, "stdin" | "signal"> {
  /**
   * Chosen by the client (random), so that it can ask how the pull ended even when it hung up
   * before the daemon's first line reached it.
   */
  operation: string;
}

/** True when the source is the rootfs tar on standard input (its bytes are the request body). */
export function readsStdin(source: string): boolean {
  return source === "-" || source === "rootfs:-";
}

export type PullLine =
  | PullEvent
  | { type: "started"; operation: string }
  | { type: "result"; record: ImageRecord }
  | { type: "error"; error: WireError };

export type OperationState =
  | { state: "running" }
  | { state: "finished"; error?: WireError; record?: ImageRecord }
  /** Never seen, or finished long ago (outcomes are kept for a minute). */
  | { state: "unknown" };

export interface PruneParams {
  all: boolean;
  dryRun: boolean;
}

export interface PruneReply {
  /** References forgotten first (--all). */
  forgot: number;
  result: PruneResult;
  cacheRoot: string;
  /** There is no cache there (nothing was pruned). */
  missing?: boolean;
}

/** What every command asks of images, whether they run in-process or in the daemon. */
export interface ImageApi {
  pull(params: Omit<PullParams, "operation">, opts: { signal?: AbortSignal; progress?: (e: PullEvent) => void; stdin?: ReadableStream<Uint8Array> }): Promise<ImageRecord>;
  list(): Promise<ImageRecord[]>;
  show(ref: string): Promise<ImageRecord>;
  remove(ref: string): Promise<ImageRecord>;
  ls(ref: string, dirPath: string): Promise<ImageDirEntry[]>;
  prune(params: PruneParams): Promise<PruneReply>;
}

export type { ImageDirEntry, ImageRecord, PullEvent };
