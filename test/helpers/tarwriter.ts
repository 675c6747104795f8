// A small tar WRITER for tests: builds the members GNU tar will not (children before parents,
// duplicates, "..", NUL bytes, 256-byte names, bad checksums, truncated data, binary xattrs,
// base-256 numbers, arbitrary PAX records), and tells where each member's data lands.
//
// Strings are encoded as UTF-8; pass a Uint8Array for exact bytes (e.g. invalid UTF-8).
//
//   const t = new TarBuilder();
//   t.dir("etc", { mode: 0o755 });
//   const off = t.file("etc/hosts", "127.0.0.1 localhost\n", { pax: { "SCHILY.xattr.user.x": new Uint8Array([0xff]) } });
//   t.hardlink("etc/hosts2", "etc/hosts");
//   const tar = t.end();              // adds the two zero blocks; t.bytes() leaves them off

export type Bytes = string | Uint8Array;

export function toBytes(x: Bytes): Uint8Array {
  return typeof x === "string" ? new Uint8Array(Buffer.from(x, "utf8")) : x;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

export type NumericValue = number | bigint;

export interface HeaderFields {
  name?: Bytes;
  mode?: number;
  uid?: NumericValue;
  gid?: NumericValue;
  size?: NumericValue;
  mtime?: NumericValue;
  /** One character: "0" file, "5" dir, "x" PAX, "L" GNU long name, ... (default "0"). */
  typeflag?: string;
  linkname?: Bytes;
  uname?: Bytes;
  gname?: Bytes;
  devmajor?: number;
  devminor?: number;
  /** ustar only: the prefix field (155 bytes). */
  prefix?: Bytes;
  /** "ustar" (POSIX, default), "gnu" (GNU magic) or "v7" (no magic, no uname/gname/dev fields). */
  format?: "ustar" | "gnu" | "v7";
  /** Force a checksum value (e.g. a wrong one); default computed. */
  checksum?: number;
  /** Write numeric fields in GNU base-256 even when they fit in octal. */
  base256?: boolean;
}

function putBytes(block: Uint8Array, off: number, len: number, value: Bytes | undefined): void {
  if (value === undefined) return;
  const b = toBytes(value);
  if (b.length > len) throw new Error(`tarwriter: field of ${b.length} bytes does not fit in ${len}`);
  block.set(b, off);
}

/** Octal (NUL-terminated) when it fits in len-1 digits, else GNU base-256. */
export function putNumeric(block: Uint8Array, off: number, len: number, value: NumericValue, forceBase256 = false): void {
  const v = BigInt(value);
  const octal = v >= 0n ? v.toString(8) : "";
  if (!forceBase256 && v >= 0n && octal.length <= len - 1) {
    putBytes(block, off, len, octal.padStart(len - 1, "0") + "\0");
    return;
  }
  // base-256 two's complement, marker bit 0x80 on the first byte.
  let x = v < 0n ? (1n << BigInt(8 * len)) + v : v;
  for (let i = len - 1; i >= 0; i -= 1) {
    block[off + i] = Number(x & 0xffn);
    x >>= 8n;
  }
  block[off] = block[off]! | 0x80;
}

export function checksumOf(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < 512; i += 1) sum += i >= 148 && i < 156 ? 0x20 : block[i]!;
  return sum;
}

/** One 512-byte header block. */
export function header(f: HeaderFields): Uint8Array {
  const block = new Uint8Array(512);
  const format = f.format ?? "ustar";
  const b256 = f.base256 ?? false;
  putBytes(block, 0, 100, f.name ?? "");
  putNumeric(block, 100, 8, f.mode ?? 0o644, b256);
  putNumeric(block, 108, 8, f.uid ?? 0, b256);
  putNumeric(block, 116, 8, f.gid ?? 0, b256);
  putNumeric(block, 124, 12, f.size ?? 0, b256);
  putNumeric(block, 136, 12, f.mtime ?? 0, b256);
  block[156] = (f.typeflag ?? "0").charCodeAt(0);
  putBytes(block, 157, 100, f.linkname);
  if (format === "ustar") putBytes(block, 257, 8, "ustar\x0000");
  if (format === "gnu") putBytes(block, 257, 8, "ustar  \x00");
  if (format !== "v7") {
    putBytes(block, 265, 32, f.uname ?? "");
    putBytes(block, 297, 32, f.gname ?? "");
    putNumeric(block, 329, 8, f.devmajor ?? 0, b256);
    putNumeric(block, 337, 8, f.devminor ?? 0, b256);
  }
  if (format === "ustar") putBytes(block, 345, 155, f.prefix);
  const sum = f.checksum ?? checksumOf(block);
  putBytes(block, 148, 8, sum.toString(8).padStart(6, "0") + "\0 ");
  return block;
}

/** Zero bytes up to the next multiple of 512. */
export function padding(length: number): Uint8Array {
  return new Uint8Array((512 - (length % 512)) % 512);
}

/** One PAX record "<len> <key>=<value>\n" with binary-safe key and value. */
export function paxRecord(key: Bytes, value: Bytes): Uint8Array {
  const body = concat([toBytes(" "), toBytes(key), toBytes("="), toBytes(value), toBytes("\n")]);
  let len = body.length + 1;
  while (String(len).length + body.length !== len) len += 1;
  return concat([toBytes(String(len)), body]);
}

export type PaxInput = Record<string, Bytes> | Array<[Bytes, Bytes]>;

export function paxPayload(records: PaxInput): Uint8Array {
  const list = Array.isArray(records) ? records : Object.entries(records);
  return concat(list.map(([k, v]) => paxRecord(k, v)));
}

/** A header (its size set to the data length unless given) + data + padding. */
export function member(fields: HeaderFields, data: Bytes = new Uint8Array(0)): Uint8Array {
  const d = toBytes(data);
  return concat([header({ size: d.length, ...fields }), d, padding(d.length)]);
}

/** A PAX extended header member: 'x' (next member) or 'g' (global). */
export function paxMember(records: PaxInput, type: "x" | "g" = "x", name: Bytes = "././@PaxHeader"): Uint8Array {
  return member({ name, typeflag: type, mode: 0o644 }, paxPayload(records));
}

/** A GNU long name ('L') or long link ('K') member, with the trailing NUL GNU tar writes. */
export function gnuLongMember(value: Bytes, type: "L" | "K" = "L"): Uint8Array {
  return member({ name: "././@LongLink", typeflag: type, format: "gnu", mode: 0o644 }, concat([toBytes(value), new Uint8Array(1)]));
}

export function endMarker(): Uint8Array {
  return new Uint8Array(1024);
}

export interface EntryOptions extends Omit<HeaderFields, "name" | "typeflag" | "size" | "linkname"> {
  /** PAX records to put in an 'x' header before the member. */
  pax?: PaxInput;
  /** Put the name (and link name) in GNU 'L'/'K' members instead of the header. */
  gnuLong?: boolean;
}

/** Appends members and records offsets; `end()` returns the whole archive. */
export class TarBuilder {
  private readonly parts: Uint8Array[] = [];
  private length = 0;

  /** Current length = offset of the next member's first header. */
  get offset(): number {
    return this.length;
  }

  /** Appends raw bytes (a hand-made member, garbage, ...). */
  raw(bytes: Uint8Array): this {
    this.parts.push(bytes);
    this.length += bytes.length;
    return this;
  }

  private entry(name: Bytes, typeflag: string, opts: EntryOptions, data: Uint8Array, linkname?: Bytes): number {
    const { pax, gnuLong, ...fields } = opts;
    if (pax) this.raw(paxMember(pax));
    let headerName: Bytes = name;
    let headerLink: Bytes | undefined = linkname;
    if (gnuLong) {
      this.raw(gnuLongMember(name, "L"));
      headerName = toBytes(name).subarray(0, 99);
      if (linkname !== undefined) {
        this.raw(gnuLongMember(linkname, "K"));
        headerLink = toBytes(linkname).subarray(0, 99);
      }
    }
    const dataOffset = this.length + 512;
    this.raw(member({ format: gnuLong ? "gnu" : undefined, ...fields, name: headerName, typeflag, linkname: headerLink }, data));
    return dataOffset;
  }

  /** A regular file; returns its data offset. */
  file(name: Bytes, data: Bytes, opts: EntryOptions = {}): number {
    return this.entry(name, "0", opts, toBytes(data));
  }

  dir(name: Bytes, opts: EntryOptions = {}): number {
    return this.entry(name, "5", { mode: 0o755, ...opts }, new Uint8Array(0));
  }

  symlink(name: Bytes, target: Bytes, opts: EntryOptions = {}): number {
    return this.entry(name, "2", { mode: 0o777, ...opts }, new Uint8Array(0), target);
  }

  hardlink(name: Bytes, target: Bytes, opts: EntryOptions = {}): number {
    return this.entry(name, "1", opts, new Uint8Array(0), target);
  }

  device(name: Bytes, kind: "char" | "block", major: number, minor: number, opts: EntryOptions = {}): number {
    return this.entry(name, kind === "char" ? "3" : "4", { devmajor: major, devminor: minor, ...opts }, new Uint8Array(0));
  }

  fifo(name: Bytes, opts: EntryOptions = {}): number {
    return this.entry(name, "6", opts, new Uint8Array(0));
  }

  /** A global PAX header. */
  globalPax(records: PaxInput): this {
    return this.raw(paxMember(records, "g"));
  }

  /** Archive without the end marker. */
  bytes(): Uint8Array {
    return concat(this.parts);
  }

  /** Archive with the two zero blocks. */
  end(): Uint8Array {
    return concat([...this.parts, endMarker()]);
  }
}
