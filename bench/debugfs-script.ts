// Part of baseline 1 (the pipeline banger's Go version used): walk an extracted tree and print a
// debugfs script that sets uid, gid and mode of EVERY entry:
//   sif "/path" uid N / sif "/path" gid N / sif "/path" mode 0x<i_mode>
//   bun bench/debugfs-script.ts DIR > script
// Run inside the timed pipeline, like the Go code's walk was.
import { lstatSync, readdirSync, writeSync } from "node:fs";

let out = "";
let skipped = 0;

function flush(force: boolean): void {
  if (!force && out.length < 1 << 20) return;
  const buf = Buffer.from(out);
  let o = 0;
  while (o < buf.length) o += writeSync(1, buf, o, buf.length - o);
  out = "";
}

function emit(rel: string, abs: string): void {
  if (/["\n\\]/.test(rel)) {
    skipped++; // debugfs' argument parser cannot take these names
    return;
  }
  const st = lstatSync(abs);
  const p = `"/${rel}"`;
  out += `sif ${p} uid ${st.uid}\nsif ${p} gid ${st.gid}\nsif ${p} mode 0x${st.mode.toString(16)}\n`;
  flush(false);
}

function walk(root: string, rel: string): void {
  const abs = rel ? `${root}/${rel}` : root;
  for (const d of readdirSync(abs, { withFileTypes: true })) {
    const childRel = rel ? `${rel}/${d.name}` : d.name;
    emit(childRel, `${root}/${childRel}`);
    if (d.isDirectory()) walk(root, childRel);
  }
}

if (import.meta.main) {
  const root = process.argv[2];
  if (!root) throw new Error("usage: debugfs-script.ts DIR");
  emit("", root);
  walk(root, "");
  flush(true);
  if (skipped) console.error(`debugfs-script: skipped ${skipped} names with quotes, backslashes or newlines`);
}
