export { LayerMerger, WHITEOUT_PREFIX, OPAQUE_MARKER } from "./merger.ts";
export { MergeError } from "./errors.ts";
