// kmod's binary index files (modules.dep.bin, modules.alias.bin, modules.builtin.bin), which
// libkmod (modprobe, systemd-modules-load) looks modules up in; it does not read the text
// files. Format, from kmod's libkmod-index.c: big-endian u32s; a header (magic 0xB007F457,
// version 2.1, root offset); then a radix trie whose nodes are
//   [prefix NUL] [first last child-offset[last-first+1]] [value-count (priority value NUL)*]
// where each part is present as the node's offset word says (flags in its top nibble).
// Written so that an image gets working indexes for the modules banger adds, with no depmod.
const MAGIC = 0xb007f457;
const VERSION = 0x00020001;
const FLAG_PREFIX = 0x80000000;
const FLAG_VALUES = 0x40000000;
const FLAG_CHILDS = 0x20000000;

interface Node {
  prefix: string;
  children: Map<number, Node>;
  values: { priority: number; value: string }[];
}

const newNode = (): Node => ({ prefix: "", children: new Map(), values: [] });

function insert(root: Node, key: string, value: string, priority: number): void {
  let n = root;
  for (const ch of key) {
    const c = ch.charCodeAt(0);
    if (c === 0 || c >= 128) throw new Error(`kmod index key ${JSON.stringify(key)}: only ASCII without NUL`);
    let next = n.children.get(c);
    if (!next) {
      next = newNode();
      n.children.set(c, next);
    }
    n = next;
  }
  n.values.push({ priority, value });
}

/** Path compression: a node with no values and one child absorbs it (the child's arc char joins the prefix). */
function compress(n: Node): void {
  while (n.values.length === 0 && n.children.size === 1) {
    const [c, child] = [...n.children][0]!;
    n.prefix += String.fromCharCode(c) + child.prefix;
    n.children = child.children;
    n.values = child.values;
  }
  for (const child of n.children.values()) compress(child);
}

/** The index file for `entries` (key -> values with priorities). */
export function kmodIndex(entries: { key: string; value: string; priority: number }[]): Uint8Array {
  const root = newNode();
  for (const e of entries) insert(root, e.key, e.value, e.priority);
  compress(root);
  const out: number[] = [];
  const u32 = (v: number) => out.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  const str = (s: string) => {
    for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0xff);
    out.push(0);
  };
  u32(MAGIC);
  u32(VERSION);
  u32(0); // root offset, patched below
  // Children first (post-order): a parent stores its children's offsets.
  const write = (n: Node): number => {
    const childOffsets = new Map<number, number>();
    for (const [c, child] of [...n.children].sort((a, b) => a[0] - b[0])) childOffsets.set(c, write(child));
    const at = out.length;
    if (at > 0x0fffffff) throw new Error("kmod index larger than 256 MiB");
    let flags = 0;
    if (n.prefix) {
      flags |= FLAG_PREFIX;
      str(n.prefix);
    }
    if (childOffsets.size > 0) {
      flags |= FLAG_CHILDS;
      const chars = [...childOffsets.keys()];
      const first = Math.min(...chars);
      const last = Math.max(...chars);
      out.push(first, last);
      for (let c = first; c <= last; c++) u32(childOffsets.get(c) ?? 0);
    }
    if (n.values.length > 0) {
      flags |= FLAG_VALUES;
      u32(n.values.length);
      for (const v of [...n.values].sort((a, b) => a.priority - b.priority)) {
        u32(v.priority);
        str(v.value);
      }
    }
    return (at | flags) >>> 0;
  };
  const rootOffset = write(root);
  const bytes = new Uint8Array(out);
  new DataView(bytes.buffer).setUint32(8, rootOffset);
  return bytes;
}
