// Source strings as users write them:
//   debian, 127.0.0.1:5000/x:y, docker://ghcr.io/a/b@sha256:...   registry
//   oci:DIR[:TAG]                                                   OCI image layout directory
//   docker-archive:FILE[:REPO:TAG]                                  `docker save` output
//   rootfs:FILE, -                                                  plain rootfs tar (- = stdin)
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { OciError } from "./errors.ts";
import type { ImageSource } from "./source.ts";
import { DockerArchiveSource } from "./sources/docker-archive.ts";
import { OciLayoutSource } from "./sources/layout.ts";
import { RegistrySource, type RegistrySourceOptions } from "./sources/registry.ts";
import { RootfsTarSource, type RootfsSourceOptions } from "./sources/rootfs.ts";

export interface SourceOptions extends RegistrySourceOptions, RootfsSourceOptions {
  /**
   * What relative paths (rootfs:FILE, oci:DIR, docker-archive:FILE) are relative to: the
   * user's working directory, which is not the daemon's. Default: this process's.
   */
  cwd?: string;
}

/** Splits "PATH[:SUFFIX]": the whole text when it names an existing path, else at the first colon after which no path exists. */
function splitPathSuffix(text: string, isWanted: (p: string) => boolean): [string, string | undefined] {
  if (isWanted(text)) return [text, undefined];
  for (let i = text.indexOf(":"); i >= 0; i = text.indexOf(":", i + 1)) {
    const p = text.slice(0, i);
    if (isWanted(p)) return [p, text.slice(i + 1) || undefined];
  }
  return [text, undefined];
}

const isDir = (p: string) => existsSync(p) && statSync(p).isDirectory();
const isFile = (p: string) => existsSync(p) && statSync(p).isFile();

export function parseSource(text: string, opts: SourceOptions = {}): ImageSource {
  const cwd = opts.cwd;
  const at = (p: string) => (cwd === undefined ? p : path.resolve(cwd, p));
  if (text === "-") return new RootfsTarSource("-", opts);
  if (text.startsWith("rootfs:")) {
    const file = text.slice("rootfs:".length);
    if (!file) throw new OciError(`source "${text}": rootfs: needs a file (or -)`);
    return new RootfsTarSource(file === "-" ? file : at(file), opts);
  }
  if (text.startsWith("oci:") || text.startsWith("oci-layout:")) {
    const rest = text.slice(text.indexOf(":") + 1);
    if (!rest) throw new OciError(`source "${text}": oci: needs a directory`);
    const [dir, tag] = splitPathSuffix(rest, (p) => isDir(at(p)));
    return new OciLayoutSource(at(dir), tag, { diffIds: opts.diffIds });
  }
  if (text.startsWith("docker-archive:")) {
    const rest = text.slice("docker-archive:".length);
    if (!rest) throw new OciError(`source "${text}": docker-archive: needs a file`);
    const [file, tag] = splitPathSuffix(rest, (p) => isFile(at(p)));
    return new DockerArchiveSource(at(file), tag, { diffIds: opts.diffIds });
  }
  const ref = text.startsWith("docker://") ? text.slice("docker://".length) : text;
  return new RegistrySource(ref, opts);
}
