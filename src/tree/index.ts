export type { ByteSource, FileData, FileDataSink, FsNode, NodeKind, Timestamp } from "./types.ts";
export { bytesToName, displayName, nameToBytes, oneLine, utf8ToName } from "./names.ts";
export { newDir, newNode, walkTree } from "./nodes.ts";
export { resolvePath, type Resolved } from "./resolve.ts";
export { SpoolPolicy } from "./spool-policy.ts";
