// A push parser for tar streams: feed it consecutive chunks of any size (it keeps no reference
// to them) and it reports each member, after that member's data has gone by, with the byte
// offset of its data in the stream and (for regular files) its non-zero 4 KiB block runs.
// It also hashes every header record (header blocks and extension payloads, not file data)
// into the stream's identity.

import type { FileDataSink, Timestamp } from "../tree/types.ts";
import { bytesToName } from "../tree/names.ts";
import { TarError } from "./errors.ts";
import { BLOCK_SIZE, compressionOf, isZeroBlock, parseHeader, type RawHeader } from "./headers.ts";
import { interpretPax, mergePaxOverrides, parsePaxRecords, type PaxOverrides, type PaxRecords } from "./pax.ts";
import { ZeroBlockScanner } from "../io/zeros.ts";

export type TarEntryType = "file" | "hardlink" | "symlink" | "chardev" | "blockdev" | "dir" | "fifo";

/** One member, with PAX and GNU extensions applied. Names are byte strings, not yet normalized. */
export interface TarEntry {
  type: TarEntryType;
  path: string;
  /** Hardlink or symlink target, as written. */
  linkname: string;
  /** Permission bits only (& 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Bytes of data following the header (regular files; 0 for the types that carry none). */
  size: number;
  mtime: Timestamp;
  /** From PAX atime/ctime when present, else equal to mtime (deterministic). */
  atime: Timestamp;
  ctime: Timestamp;
  major: number;
  minor: number;
  xattrs: Map<string, Uint8Array>;
  /** Offset of this member's own header block (after any PAX/GNU extension headers). */
  headerOffset: number;
  /** Offset of its data in the stream. */
  dataOffset: number;
  /** Regular files with zero detection on and at least one all-zero block: non-zero runs. */
  runs?: Uint32Array;
}

export interface TarParserOptions {
  /** Find all-zero 4 KiB blocks of regular files (default true). */
  detectZeros?: boolean;
  /** Largest accepted PAX/GNU extension payload (default 64 MiB); also bounds consecutive 'x' headers together. */
  maxExtensionSize?: number;
  /** Most distinct keys global PAX headers may set in total (default 1,000). */
  maxGlobalPaxRecords?: number;
  /** Most bytes (keys + values) global PAX headers may set in total (default 1 MiB). */
  maxGlobalPaxBytes?: number;
}

type State = "header" | "data" | "extension" | "padding" | "end";

const TYPES: Record<string, TarEntryType> = {
  "0": "file",
  "\0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "3": "chardev",
  "4": "blockdev",
  "5": "dir",
  "6": "fifo",
  D: "dir", // GNU dumpdir (incremental): a directory whose data lists its contents
};

/** What no PAX records say; shared, so never modified (entries' xattrs are copied into nodes). */
const NO_PAX: PaxOverrides = { xattrs: new Map(), sparse: false };

/** Types whose size field never describes following data (POSIX: 3, 4, 6; symlinks too, like libarchive). */
const NO_DATA = new Set(["2", "3", "4", "6"]);

/** memcpy by ranges, without a subarray view per call (works on any Uint8Array). */
const copyBytes = Buffer.prototype.copy;

export class TarParser {
  private readonly onEntry: (entry: TarEntry) => void;
  private readonly detectZeros: boolean;
  private readonly maxExtensionSize: number;
  private readonly maxGlobalPaxRecords: number;
  private readonly maxGlobalPaxBytes: number;
  /**
   * The identity is a chain of xxHash64 over the header bytes in fixed 64 KiB pieces (each
   * piece's hash seeds the next), so it depends on those bytes alone, not on how the input was
   * chunked. It only seeds the UUID and directory hash seed: 64 bits are plenty, and sha256 cost
   * ~4 ms of the main thread on the Debian rootfs' 6 MB of headers against ~0.7 ms.
   */
  private hashChain = 0n;
  private hashedBytes = 0;
  private readonly hashBuf = new Uint8Array(64 << 10);
  private hashFill = 0;

  private state: State = "header";
  /** Stream offset of the next byte pushed. */
  private pos = 0;
  private readonly headerBuf = new Uint8Array(BLOCK_SIZE);
  private headerFill = 0;
  private remaining = 0;
  private current: TarEntry | null = null;
  private scanner: ZeroBlockScanner | null = null;
  private fileData: FileDataSink | null = null;
  /** The current member's data goes to fileData. */
  private sinking = false;

  private extType = "";
  private extBuf = new Uint8Array(0);
  private extFill = 0;
  private extHeader: RawHeader | null = null;

  /**
   * Global records apply to every later member. They are interpreted once per change
   * (globalOverrides), never copied per member: a member's own records are merged over them.
   */
  private globalPax: PaxRecords = new Map();
  private globalPaxBytes = 0;
  private globalOverrides: PaxOverrides | null = null;
  private localPax: PaxRecords | null = null;
  private localPaxBytes = 0;
  private longName: string | null = null;
  private longLink: string | null = null;
  /** The member a pending extension header belongs to, for error messages. */
  private lastName: string | null = null;
  private memberCount = 0;

  constructor(onEntry: (entry: TarEntry) => void, options: TarParserOptions = {}) {
    this.onEntry = onEntry;
    this.detectZeros = options.detectZeros ?? true;
    this.maxExtensionSize = options.maxExtensionSize ?? 64 << 20;
    this.maxGlobalPaxRecords = options.maxGlobalPaxRecords ?? 1000;
    this.maxGlobalPaxBytes = options.maxGlobalPaxBytes ?? 1 << 20;
  }

  /** From now on, regular files' data goes to `sink` (which then finds their zero blocks). */
  useFileDataSink(sink: FileDataSink): void {
    this.fileData = sink;
  }

  /** Bytes consumed so far. */
  get offset(): number {
    return this.pos;
  }

  /** True once the end-of-archive marker was seen; later bytes are ignored. */
  get ended(): boolean {
    return this.state === "end";
  }

  /** Feeds the next `chunk` of the stream. The parser does not keep a reference to it. */
  push(chunk: Uint8Array): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      switch (this.state) {
        case "header": {
          if (this.headerFill === 0 && n - i >= BLOCK_SIZE) {
            i += BLOCK_SIZE;
            this.pos += BLOCK_SIZE;
            this.handleHeader(chunk, i - BLOCK_SIZE, this.pos - BLOCK_SIZE);
          } else {
            const take = Math.min(BLOCK_SIZE - this.headerFill, n - i);
            this.headerBuf.set(chunk.subarray(i, i + take), this.headerFill);
            this.headerFill += take;
            i += take;
            this.pos += take;
            if (this.headerFill === BLOCK_SIZE) {
              this.headerFill = 0;
              this.handleHeader(this.headerBuf, 0, this.pos - BLOCK_SIZE);
            }
          }
          break;
        }
        case "data": {
          const take = Math.min(this.remaining, n - i);
          if (this.sinking) this.fileData!.data(chunk, i, i + take);
          else if (this.scanner) this.scanner.scan(chunk, i, i + take);
          i += take;
          this.pos += take;
          this.remaining -= take;
          if (this.remaining === 0) this.finishData();
          break;
        }
        case "extension": {
          const take = Math.min(this.extBuf.length - this.extFill, n - i);
          this.extBuf.set(chunk.subarray(i, i + take), this.extFill);
          this.extFill += take;
          i += take;
          this.pos += take;
          if (this.extFill === this.extBuf.length) this.finishExtension();
          break;
        }
        case "padding": {
          const take = Math.min(this.remaining, n - i);
          i += take;
          this.pos += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = "header";
          break;
        }
        case "end":
          this.pos += n - i;
          i = n;
          break;
      }
    }
  }

  /** The stream ended. Throws TarError when it ended inside a member. */
  end(): void {
    switch (this.state) {
      case "end":
        return;
      case "header":
        if (this.headerFill > 0 && this.pos === this.headerFill) {
          const compressed = compressionOf(this.headerBuf);
          if (compressed) throw new TarError(null, `input is ${compressed}-compressed; decompress it first`);
        }
        if (this.headerFill > 0) throw new TarError(this.lastName, `truncated: the archive ends inside a header block (at byte ${this.pos})`);
        if (this.localPax || this.longName !== null || this.longLink !== null) {
          throw new TarError(this.lastName, "truncated: the archive ends after an extension header, before its member");
        }
        if (this.memberCount === 0 && this.pos === 0) throw new TarError(null, "empty input: not a tar archive");
        return;
      case "data":
        throw new TarError(this.current!.path, `truncated: data ends ${this.remaining} bytes short (archive ends at byte ${this.pos})`);
      case "extension":
        throw new TarError(this.lastName, `truncated: the archive ends inside an extension header payload`);
      case "padding":
        // The member is complete; only its padding is missing. Accept, like a missing end marker.
        return;
    }
  }

  /** 32 bytes identifying all header records so far (call after end()). */
  identity(): Uint8Array {
    this.drainHash();
    const tail = new DataView(new ArrayBuffer(16));
    tail.setBigUint64(0, this.hashChain, true);
    tail.setFloat64(8, this.hashedBytes, true);
    return new Uint8Array(new Bun.CryptoHasher("sha256").update("banger tar headers v2").update(new Uint8Array(tail.buffer)).digest());
  }

  /** Adds header bytes to the identity, through a buffer: one native call per 64 KiB, not per header. */
  private hashRecord(bytes: Uint8Array, off: number, len: number): void {
    const cap = this.hashBuf.length;
    while (len > 0) {
      const take = Math.min(len, cap - this.hashFill);
      copyBytes.call(bytes, this.hashBuf, this.hashFill, off, off + take);
      this.hashFill += take;
      off += take;
      len -= take;
      if (this.hashFill === cap) this.drainHash();
    }
  }

  private drainHash(): void {
    if (this.hashFill === 0) return;
    this.hashChain = BigInt.asUintN(64, Bun.hash.xxHash64(this.hashBuf.subarray(0, this.hashFill), this.hashChain));
    this.hashedBytes += this.hashFill;
    this.hashFill = 0;
  }

  /** Called with `this.pos` already past the header block, which started at `headerOffset`. */
  private handleHeader(block: Uint8Array, off: number, headerOffset: number): void {
    if (isZeroBlock(block, off)) {
      if (this.localPax || this.longName !== null || this.longLink !== null) {
        throw new TarError(this.lastName, `end-of-archive block right after an extension header (at byte ${headerOffset})`);
      }
      this.state = "end";
      return;
    }
    const raw = parseHeader(block, off, headerOffset);
    this.hashRecord(block, off, BLOCK_SIZE);
    const t = raw.typeflag;
    if (t === "x" || t === "g" || t === "L" || t === "K") {
      this.lastName = raw.name;
      if (raw.size > this.maxExtensionSize) {
        throw new TarError(raw.name, `extension header of type '${t}' is ${raw.size} bytes, over the ${this.maxExtensionSize}-byte limit`);
      }
      this.extType = t;
      this.extHeader = raw;
      this.extBuf = new Uint8Array(raw.size);
      this.extFill = 0;
      if (raw.size === 0) {
        this.finishExtension();
      } else {
        this.state = "extension";
      }
      return;
    }

    // A real member: apply extensions (global PAX, then this member's PAX, then GNU long names).
    let path = this.longName ?? raw.name;
    const provisional = path;
    const global = this.globalPax.size === 0 ? null : (this.globalOverrides ??= interpretPax(this.globalPax, provisional));
    const local = this.localPax;
    let pax: PaxOverrides;
    if (local === null) pax = global ?? NO_PAX;
    else if (global === null) pax = interpretPax(local, provisional);
    else pax = mergePaxOverrides(global, interpretPax(local, provisional), local);
    if (pax.path !== undefined) path = pax.path;
    const linkname = pax.linkpath ?? this.longLink ?? raw.linkname;
    this.localPax = null;
    this.localPaxBytes = 0;
    this.longName = null;
    this.longLink = null;
    this.lastName = path;

    if (t === "S" || pax.sparse) throw new TarError(path, "GNU sparse members are unsupported (re-create the tar without --sparse)");
    let type = TYPES[t];
    if (type === undefined) {
      if (t === "V") {
        // GNU volume label: no file. Skip its data, if any.
        this.skipMember(raw.size, null);
        return;
      }
      throw new TarError(path, `unsupported entry type '${t === "\0" ? "\\0" : t}' (0x${t.charCodeAt(0).toString(16)})`);
    }
    // Old (v7-style) archives mark directories with a trailing slash on a regular-file entry.
    // Not for a path naming the archive root ("./", "/"): that is a regular file over the root,
    // refused like "." as a file, rather than a way to give the root a file's mode.
    if (type === "file" && (t === "0" || t === "\0") && path.endsWith("/") && !namesRoot(path)) type = "dir";

    const mtime: Timestamp = pax.mtime ?? { sec: raw.mtime, nsec: 0 };
    const size = NO_DATA.has(t) ? 0 : (pax.size ?? raw.size);
    const entry: TarEntry = {
      type,
      path,
      linkname,
      mode: raw.mode & 0o7777,
      uid: pax.uid ?? raw.uid,
      gid: pax.gid ?? raw.gid,
      size: type === "file" ? size : 0,
      mtime,
      atime: pax.atime ?? mtime,
      ctime: pax.ctime ?? mtime,
      major: pax.devmajor ?? raw.devmajor,
      minor: pax.devminor ?? raw.devminor,
      xattrs: pax.xattrs,
      headerOffset,
      dataOffset: headerOffset + BLOCK_SIZE,
    };
    this.memberCount += 1;
    this.skipMember(size, entry);
  }

  /** Enters the data state for `size` bytes after the current header, then emits `entry`. */
  private skipMember(size: number, entry: TarEntry | null): void {
    this.current = entry;
    const file = entry !== null && entry.type === "file" && size > 0;
    this.sinking = file && this.fileData !== null;
    this.scanner = file && !this.sinking && this.detectZeros ? new ZeroBlockScanner() : null;
    if (this.sinking) this.fileData!.begin(entry!.dataOffset, size);
    this.remaining = size;
    if (size === 0) {
      this.finishData();
    } else {
      this.state = "data";
    }
  }

  private finishData(): void {
    const entry = this.current;
    // `pos` is where the data ended; members start on 512-byte boundaries.
    const padding = (BLOCK_SIZE - (this.pos % BLOCK_SIZE)) % BLOCK_SIZE;
    if (entry) {
      if (this.sinking) {
        const runs = this.fileData!.end();
        if (runs) entry.runs = runs;
        this.sinking = false;
      } else if (this.scanner) {
        const runs = this.scanner.finish();
        if (runs) entry.runs = runs;
      }
      this.current = null;
      this.scanner = null;
      this.onEntry(entry);
    }
    this.remaining = padding;
    this.state = padding > 0 ? "padding" : "header";
  }

  private finishExtension(): void {
    const payload = this.extBuf;
    this.hashRecord(payload, 0, payload.length);
    this.extBuf = new Uint8Array(0);
    const raw = this.extHeader!;
    switch (this.extType) {
      case "x":
        this.localPaxBytes += payload.length;
        if (this.localPaxBytes > this.maxExtensionSize) {
          throw new TarError(raw.name, `consecutive PAX extended headers total ${this.localPaxBytes} bytes, over the ${this.maxExtensionSize}-byte limit`);
        }
        this.localPax = parsePaxRecords(payload, raw.name, this.localPax ?? new Map());
        break;
      case "g": {
        // Bounded in total (keys and bytes): they accumulate over the whole archive.
        const records = parsePaxRecords(payload, raw.name, new Map(), this.maxGlobalPaxRecords);
        for (const [k, v] of records) {
          const old = this.globalPax.get(k);
          if (old !== undefined) this.globalPaxBytes -= k.length + old.length;
          if (v.length === 0) {
            this.globalPax.delete(k);
          } else {
            this.globalPax.set(k, v);
            this.globalPaxBytes += k.length + v.length;
          }
        }
        this.globalOverrides = null;
        if (this.globalPax.size > this.maxGlobalPaxRecords) {
          throw new TarError(raw.name, `global PAX headers set ${this.globalPax.size} keys, over the limit of ${this.maxGlobalPaxRecords}`);
        }
        if (this.globalPaxBytes > this.maxGlobalPaxBytes) {
          throw new TarError(raw.name, `global PAX headers hold ${this.globalPaxBytes} bytes of keys and values, over the ${this.maxGlobalPaxBytes}-byte limit`);
        }
        break;
      }
      case "L":
        this.longName = stripNuls(payload);
        this.lastName = this.longName;
        break;
      case "K":
        this.longLink = stripNuls(payload);
        break;
    }
    const padding = (BLOCK_SIZE - (this.pos % BLOCK_SIZE)) % BLOCK_SIZE;
    this.remaining = padding;
    this.state = padding > 0 ? "padding" : "header";
  }
}

function stripNuls(payload: Uint8Array): string {
  let end = payload.length;
  while (end > 0 && payload[end - 1] === 0) end -= 1;
  // A GNU long name is a C string: anything after the first NUL is padding.
  const nul = payload.indexOf(0);
  if (nul >= 0 && nul < end) end = nul;
  return bytesToName(payload.subarray(0, end));
}

/** True for a path made of "/" and "." components only ("./", "/", "././"): the archive root. */
function namesRoot(path: string): boolean {
  for (const c of path.split("/")) if (c !== "" && c !== ".") return false;
  return true;
}
