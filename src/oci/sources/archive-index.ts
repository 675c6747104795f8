// Table of contents of an uncompressed outer tar (a `docker save` archive): member name ->
// offset and size of its data, so members can be read in place without extracting. Only
// what such archives use is understood: ustar names with prefix, GNU long names ('L') and
// PAX `path` records. Layer contents are not parsed here; they are handed out as bytes.
import fs from "node:fs/promises";
import { OciError } from "../errors.ts";

export interface ArchiveMember {
  offset: number;
  size: number;
  type: string;
}

function cstr(b: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && b[end] !== 0) end++;
  return new TextDecoder().decode(b.subarray(off, end));
}

function num(b: Uint8Array, off: number, len: number, where: string): number {
  if (b[off]! & 0x80) {
    // base-256 (GNU) for large sizes
    let v = 0;
    for (let i = off + 1; i < off + len; i++) v = v * 256 + b[i]!;
    return v;
  }
  const s = cstr(b, off, len).trim();
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new OciError(`${where}: bad octal number "${s}" in tar header`);
  return parseInt(s, 8);
}

export async function indexArchive(file: string): Promise<Map<string, ArchiveMember>> {
  const fh = await fs.open(file, "r");
  const members = new Map<string, ArchiveMember>();
  try {
    const size = (await fh.stat()).size;
    const h = new Uint8Array(512);
    let pos = 0;
    let longName: string | undefined;
    let paxPath: string | undefined;
    while (pos + 512 <= size) {
      const { bytesRead } = await fh.read(h, 0, 512, pos);
      if (bytesRead < 512) break;
      if (h.every((x) => x === 0)) break;
      const where = `${file} at offset ${pos}`;
      const magic = cstr(h, 257, 6);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : h[i]!;
      if (num(h, 148, 8, where) !== sum) throw new OciError(`${where}: tar header checksum mismatch (is this an uncompressed tar?)`);
      const dataSize = num(h, 124, 12, where);
      const type = String.fromCharCode(h[156]! || 48);
      const dataOff = pos + 512;
      const next = dataOff + Math.ceil(dataSize / 512) * 512;
      if (type === "L" || type === "x") {
        const buf = new Uint8Array(dataSize);
        await fh.read(buf, 0, dataSize, dataOff);
        if (type === "L") longName = cstr(buf, 0, dataSize);
        else {
          const text = new TextDecoder().decode(buf);
          const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(text);
          if (m) paxPath = m[1];
        }
        pos = next;
        continue;
      }
      let name = paxPath ?? longName ?? (magic.startsWith("ustar") && h[345] ? `${cstr(h, 345, 155)}/${cstr(h, 0, 100)}` : cstr(h, 0, 100));
      longName = paxPath = undefined;
      name = name.replace(/^\.\//, "").replace(/^\/+/, "");
      members.set(name, { offset: dataOff, size: dataSize, type });
      pos = next;
    }
  } finally {
    await fh.close();
  }
  return members;
}
