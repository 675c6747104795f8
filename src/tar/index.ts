export { TarError } from "./errors.ts";
export { loadRootfsTar, type LoadedRootfs, type LoadOptions } from "./rootfs.ts";
export { TarParser, type TarEntry, type TarEntryType, type TarParserOptions } from "./reader.ts";
export { parseTarFd, CHUNK_SIZE } from "./input.ts";
export { FdByteSource } from "./source.ts";
export {
  splitTarPath,
  normalizeTarPath,
  resolveDir,
  lookupPath,
  nodeFromEntry,
  placeNode,
  takeDirMetadata,
  RootfsBuilder,
  NAME_MAX,
  MAX_SYMLINK_HOPS,
} from "./tree.ts";
export { parsePaxRecords, interpretPax, paxTime, paxInteger, type PaxRecords, type PaxOverrides } from "./pax.ts";
export { aclTextToXattr, parseAclText, encodeAclXattr, hostNameResolver, type AclEntry, type NameResolver } from "./acl.ts";
export { parseHeader, parseNumeric, verifyChecksum, isZeroBlock, BLOCK_SIZE, type RawHeader, type HeaderFormat } from "./headers.ts";
