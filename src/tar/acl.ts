// POSIX ACLs from their text form (as GNU tar's SCHILY.acl.access / SCHILY.acl.default and
// star write them) to the binary Linux VFS xattr value (system.posix_acl_access/default):
//
//   header: le32 version = 2
//   entry:  le16 tag, le16 perm (r=4 w=2 x=1), le32 id (0xffffffff for entries without one)
//
// The kernel requires entries ordered by tag (USER_OBJ, USER, GROUP_OBJ, GROUP, MASK, OTHER)
// and, within USER and GROUP, by increasing id; duplicates are invalid.
//
// Text form: entries separated by ',' or newlines, each `tag:qualifier:perms` with an
// optional 4th field holding the numeric id (star: `user:joe:rw-:1000`); `#` starts a comment.
// Tags may be abbreviated (u, g, m, o). GNU tar writes user/group *names* as qualifiers;
// like GNU tar extracting on this machine, names are looked up in this host's /etc/passwd and
// /etc/group (a numeric qualifier or 4th field needs no lookup). An unknown name is an error
// rather than a silently dropped ACL.

import { readFileSync } from "node:fs";

import {
  ACL_GROUP,
  ACL_GROUP_OBJ,
  ACL_MASK,
  ACL_OTHER,
  ACL_UNDEFINED_ID,
  ACL_USER,
  ACL_USER_OBJ,
  POSIX_ACL_XATTR_VERSION,
} from "../tree/posix-acl.ts";

export interface AclEntry {
  tag: number;
  perm: number;
  id: number;
}

/** Resolves a user or group name to its id; null when unknown. */
export type NameResolver = (kind: "user" | "group", name: string) => number | null;

let hostIds: { user: Map<string, number>; group: Map<string, number> } | null = null;

function readIdFile(path: string): Map<string, number> {
  const ids = new Map<string, number>();
  let text = "";
  try {
    text = readFileSync(path, "latin1");
  } catch {
    return ids;
  }
  for (const line of text.split("\n")) {
    const fields = line.split(":");
    if (fields.length >= 3 && /^\d+$/.test(fields[2]!) && !ids.has(fields[0]!)) ids.set(fields[0]!, Number(fields[2]));
  }
  return ids;
}

/** Host name lookup through /etc/passwd and /etc/group (what GNU tar's extraction would see). */
export const hostNameResolver: NameResolver = (kind, name) => {
  hostIds ??= { user: readIdFile("/etc/passwd"), group: readIdFile("/etc/group") };
  return hostIds[kind].get(name) ?? null;
};

const TAGS: Record<string, [number, number]> = {
  // [tag without qualifier, tag with qualifier]
  user: [ACL_USER_OBJ, ACL_USER],
  u: [ACL_USER_OBJ, ACL_USER],
  group: [ACL_GROUP_OBJ, ACL_GROUP],
  g: [ACL_GROUP_OBJ, ACL_GROUP],
  mask: [ACL_MASK, -1],
  m: [ACL_MASK, -1],
  other: [ACL_OTHER, -1],
  o: [ACL_OTHER, -1],
};

function parsePerm(text: string): number {
  let perm = 0;
  for (const c of text) {
    if (c === "r") perm |= 4;
    else if (c === "w") perm |= 2;
    else if (c === "x") perm |= 1;
    else if (c !== "-") throw new Error(`bad permission "${text}"`);
  }
  return perm;
}

/** Parses a text ACL; throws Error with the offending entry on anything it cannot read. */
export function parseAclText(text: string, resolve: NameResolver = hostNameResolver): AclEntry[] {
  const entries: AclEntry[] = [];
  for (const raw of text.split(/[,\n]/)) {
    const item = raw.replace(/#.*$/, "").trim();
    if (item === "") continue;
    const fields = item.split(":").map((f) => f.trim());
    if (fields.length < 3 || fields.length > 4) throw new Error(`bad ACL entry "${item}"`);
    const [tagText, qualifier, permText, idText] = fields as [string, string, string, string | undefined];
    const tags = TAGS[tagText];
    if (!tags) throw new Error(`bad ACL tag in "${item}"`);
    const perm = parsePerm(permText);
    if (qualifier === "") {
      entries.push({ tag: tags[0], perm, id: ACL_UNDEFINED_ID });
      continue;
    }
    if (tags[1] < 0) throw new Error(`ACL entry "${item}" cannot name a user or group`);
    let id: number | null = null;
    if (idText !== undefined && /^\d+$/.test(idText)) id = Number(idText);
    else if (/^\d+$/.test(qualifier)) id = Number(qualifier);
    else id = resolve(tags[1] === ACL_USER ? "user" : "group", qualifier);
    if (id === null || id > 0xfffffffe) throw new Error(`unknown ${tags[1] === ACL_USER ? "user" : "group"} "${qualifier}" in ACL entry "${item}"`);
    entries.push({ tag: tags[1], perm, id });
  }
  return entries;
}

/** Sorts into kernel order, checks completeness and duplicates, and encodes the VFS xattr value. */
export function encodeAclXattr(entries: AclEntry[]): Uint8Array {
  const sorted = [...entries].sort((a, b) => a.tag - b.tag || a.id - b.id);
  for (let i = 1; i < sorted.length; i += 1) {
    if (sorted[i]!.tag === sorted[i - 1]!.tag && sorted[i]!.id === sorted[i - 1]!.id) throw new Error("duplicate ACL entry");
  }
  const has = (tag: number) => sorted.some((e) => e.tag === tag);
  if (!has(ACL_USER_OBJ) || !has(ACL_GROUP_OBJ) || !has(ACL_OTHER)) throw new Error("ACL lacks a user::, group:: or other:: entry");
  if ((has(ACL_USER) || has(ACL_GROUP)) && !has(ACL_MASK)) throw new Error("ACL with named entries lacks a mask:: entry");
  const out = new Uint8Array(4 + 8 * sorted.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, POSIX_ACL_XATTR_VERSION, true);
  sorted.forEach((e, i) => {
    view.setUint16(4 + 8 * i, e.tag, true);
    view.setUint16(6 + 8 * i, e.perm, true);
    view.setUint32(8 + 8 * i, e.id, true);
  });
  return out;
}

export function aclTextToXattr(text: string, resolve: NameResolver = hostNameResolver): Uint8Array {
  return encodeAclXattr(parseAclText(text, resolve));
}
