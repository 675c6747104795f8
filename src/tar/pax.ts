// PAX extended headers ('x' per member, 'g' global): records "<len> <key>=<value>\n" where
// <len> counts the whole record in bytes. Records are parsed as BYTES: values such as
// SCHILY.xattr.* are arbitrary binary and are never decoded as UTF-8. Keys and text values
// become byte strings (one char per byte), like tree names.

import type { Timestamp } from "../tree/types.ts";
import { bytesToName } from "../tree/names.ts";
import { aclTextToXattr } from "./acl.ts";
import { TarError } from "./errors.ts";

/** Records in order; a later record with the same key wins. */
export type PaxRecords = Map<string, Uint8Array>;

/**
 * Parses an extended header payload. `entry` names the member for errors (may be null). More
 * than `maxRecords` distinct keys in `into` is an error, found as soon as it happens (so a
 * hostile million-key header costs no more than the bound).
 */
export function parsePaxRecords(payload: Uint8Array, entry: string | null, into: PaxRecords = new Map(), maxRecords = Infinity): PaxRecords {
  let pos = 0;
  const n = payload.length;
  while (pos < n) {
    // Trailing NUL padding after the last record occurs in the wild; accept it.
    if (payload[pos] === 0) {
      let allZero = true;
      for (let i = pos; i < n; i += 1) if (payload[i] !== 0) allZero = false;
      if (allZero) break;
    }
    let len = 0;
    let p = pos;
    while (p < n && payload[p]! >= 0x30 && payload[p]! <= 0x39) {
      len = len * 10 + (payload[p]! - 0x30);
      p += 1;
    }
    if (p === pos || p >= n || payload[p] !== 0x20 || len <= p - pos + 1 || pos + len > n || payload[pos + len - 1] !== 0x0a) {
      throw new TarError(entry, `malformed PAX extended header record at payload byte ${pos}`);
    }
    const recordEnd = pos + len - 1; // the '\n'
    let eq = p + 1;
    while (eq < recordEnd && payload[eq] !== 0x3d) eq += 1;
    if (eq >= recordEnd || eq === p + 1) throw new TarError(entry, `malformed PAX extended header record at payload byte ${pos} (no key=value)`);
    const key = bytesToName(payload.subarray(p + 1, eq));
    into.set(key, payload.slice(eq + 1, recordEnd));
    if (into.size > maxRecords) throw new TarError(entry, `PAX extended headers hold more than ${maxRecords} records`);
    pos += len;
  }
  return into;
}

const DIGITS = /^[0-9]+$/;

/** Decimal non-negative integer value of a record (uid, gid, size, ...). */
export function paxInteger(value: Uint8Array, key: string, entry: string | null): number {
  const text = bytesToName(value);
  if (!DIGITS.test(text)) throw new TarError(entry, `invalid PAX ${key} value "${text}"`);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new TarError(entry, `PAX ${key} value ${text} is too large`);
  return n;
}

/**
 * A PAX time: optional '-', decimal seconds, optional fraction (any number of digits; beyond
 * nanoseconds truncated). Negative values are normalized so that nsec is in 0..999_999_999:
 * "-1.25" is sec -2, nsec 750_000_000.
 */
export function paxTime(value: Uint8Array, key: string, entry: string | null): Timestamp {
  const text = bytesToName(value);
  const m = /^(-?)([0-9]+)(?:\.([0-9]*))?$/.exec(text);
  if (!m) throw new TarError(entry, `invalid PAX ${key} value "${text}"`);
  const whole = Number(m[2]);
  if (!Number.isSafeInteger(whole)) throw new TarError(entry, `PAX ${key} value ${text} is out of range`);
  const nsec = Number(((m[3] ?? "") + "000000000").slice(0, 9));
  if (m[1] !== "-") return { sec: whole, nsec };
  if (nsec === 0) return { sec: whole === 0 ? 0 : -whole, nsec: 0 };
  return { sec: -whole - 1, nsec: 1_000_000_000 - nsec };
}

function percentDecode(text: string): string {
  return text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** What the (global + per-member) PAX records say about one member. */
export interface PaxOverrides {
  path?: string;
  linkpath?: string;
  size?: number;
  uid?: number;
  gid?: number;
  uname?: string;
  gname?: string;
  mtime?: Timestamp;
  atime?: Timestamp;
  ctime?: Timestamp;
  devmajor?: number;
  devminor?: number;
  xattrs: Map<string, Uint8Array>;
  /** GNU.sparse.* seen: a sparse member, which we do not support. */
  sparse: boolean;
}

const XATTR_PREFIX = "SCHILY.xattr.";
const LIBARCHIVE_XATTR_PREFIX = "LIBARCHIVE.xattr.";

/**
 * Interprets records. Empty values of standard keywords mean "not set" (the header field
 * applies); an empty SCHILY.xattr value is an empty xattr. Binary xattrs
 * (SCHILY.xattr.system.posix_acl_*) win over the text ACLs (SCHILY.acl.*) GNU tar writes next to them.
 */
export function interpretPax(records: PaxRecords, entry: string | null): PaxOverrides {
  const out: PaxOverrides = { xattrs: new Map(), sparse: false };
  const textAcls: Array<[string, string]> = [];
  let selinux: Uint8Array | undefined;
  for (const [key, value] of records) {
    if (key.startsWith(XATTR_PREFIX)) {
      out.xattrs.set(key.slice(XATTR_PREFIX.length), value);
      continue;
    }
    if (key.startsWith(LIBARCHIVE_XATTR_PREFIX)) {
      const name = percentDecode(key.slice(LIBARCHIVE_XATTR_PREFIX.length));
      if (!out.xattrs.has(name)) out.xattrs.set(name, new Uint8Array(Buffer.from(bytesToName(value), "base64")));
      continue;
    }
    if (key.startsWith("GNU.sparse.")) {
      out.sparse = true;
      continue;
    }
    if (value.length === 0) continue;
    switch (key) {
      case "path":
        out.path = bytesToName(value);
        break;
      case "linkpath":
        out.linkpath = bytesToName(value);
        break;
      case "size":
        out.size = paxInteger(value, key, entry);
        break;
      case "uid":
        out.uid = paxInteger(value, key, entry);
        break;
      case "gid":
        out.gid = paxInteger(value, key, entry);
        break;
      case "uname":
        out.uname = bytesToName(value);
        break;
      case "gname":
        out.gname = bytesToName(value);
        break;
      case "mtime":
        out.mtime = paxTime(value, key, entry);
        break;
      case "atime":
        out.atime = paxTime(value, key, entry);
        break;
      case "ctime":
        out.ctime = paxTime(value, key, entry);
        break;
      case "SCHILY.devmajor":
        out.devmajor = paxInteger(value, key, entry);
        break;
      case "SCHILY.devminor":
        out.devminor = paxInteger(value, key, entry);
        break;
      case "SCHILY.acl.access":
        textAcls.push(["system.posix_acl_access", bytesToName(value)]);
        break;
      case "SCHILY.acl.default":
        textAcls.push(["system.posix_acl_default", bytesToName(value)]);
        break;
      case "RHT.security.selinux":
        // GNU tar --selinux stores the context string; the xattr value carries a trailing NUL.
        selinux = value[value.length - 1] === 0 ? value : new Uint8Array([...value, 0]);
        break;
      default:
        // charset, comment, hdrcharset, SCHILY.dev/ino/nlink/fflags, LIBARCHIVE.creationtime, ...:
        // nothing an ext4 inode records.
        break;
    }
  }
  for (const [name, text] of textAcls) {
    if (out.xattrs.has(name)) continue;
    try {
      out.xattrs.set(name, aclTextToXattr(text));
    } catch (e) {
      throw new TarError(entry, `cannot convert ${name === "system.posix_acl_access" ? "SCHILY.acl.access" : "SCHILY.acl.default"}: ${(e as Error).message}`);
    }
  }
  if (selinux && !out.xattrs.has("security.selinux")) out.xattrs.set("security.selinux", selinux);
  // GNU tar --acls writes the mode-equivalent access ACL (user::, group::, other:: only) of every
  // file; the kernel never stores such an ACL (it is just the mode), so neither do we.
  const access = out.xattrs.get("system.posix_acl_access");
  if (access && isMinimalAcl(access)) out.xattrs.delete("system.posix_acl_access");
  return out;
}

/** The standard keywords and the PaxOverrides field each sets. */
const FIELD_OF_KEY: ReadonlyArray<readonly [string, keyof PaxOverrides]> = [
  ["path", "path"],
  ["linkpath", "linkpath"],
  ["size", "size"],
  ["uid", "uid"],
  ["gid", "gid"],
  ["uname", "uname"],
  ["gname", "gname"],
  ["mtime", "mtime"],
  ["atime", "atime"],
  ["ctime", "ctime"],
  ["SCHILY.devmajor", "devmajor"],
  ["SCHILY.devminor", "devminor"],
];

function copyField<K extends keyof PaxOverrides>(out: PaxOverrides, from: PaxOverrides, field: K): void {
  if (from[field] !== undefined) out[field] = from[field];
}

/** Records that set each ACL xattr, in either of their forms (binary xattr, text). */
const ACL_KEYS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ["system.posix_acl_access", [XATTR_PREFIX + "system.posix_acl_access", "SCHILY.acl.access"]],
  ["system.posix_acl_default", [XATTR_PREFIX + "system.posix_acl_default", "SCHILY.acl.default"]],
];

/**
 * One member's overrides from the global ones (`global`, interpreted once per global header,
 * not per member) and its own (`local`, interpreted from `localRecords`): a keyword the member's
 * records carry wins, even with an empty value (which unsets the global one, as POSIX says);
 * others come from the global records. Xattrs are merged by name, the member's winning. The
 * result may share `global.xattrs` (entries' xattrs are copied into nodes, never modified).
 */
export function mergePaxOverrides(global: PaxOverrides, local: PaxOverrides, localRecords: PaxRecords): PaxOverrides {
  const out: PaxOverrides = { xattrs: local.xattrs, sparse: global.sparse || local.sparse };
  for (const [key, field] of FIELD_OF_KEY) {
    copyField(out, localRecords.has(key) ? local : global, field);
  }
  if (global.xattrs.size > 0) {
    const xattrs = new Map(global.xattrs);
    // A member's ACL record decides that ACL, even when it was dropped as mode-equivalent.
    for (const [name, keys] of ACL_KEYS) if (keys.some((k) => localRecords.has(k))) xattrs.delete(name);
    for (const [name, value] of local.xattrs) xattrs.set(name, value);
    out.xattrs = xattrs;
  }
  return out;
}

/** A VFS ACL value holding only the three base entries (equivalent to permission bits). */
export function isMinimalAcl(value: Uint8Array): boolean {
  if (value.length !== 4 + 3 * 8) return false;
  const view = new DataView(value.buffer, value.byteOffset, value.byteLength);
  for (let i = 0; i < 3; i += 1) {
    const tag = view.getUint16(4 + 8 * i, true);
    if (tag !== 0x01 && tag !== 0x04 && tag !== 0x20) return false;
  }
  return true;
}
