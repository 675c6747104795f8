// Image names: what a pull is called when the user gives no --name, and which names are allowed.
// Names end up in paths, table cells and shell scripts, hence the small charset.
import path from "node:path";
import { CatalogSource } from "./catalog-source.ts";
import { findInCatalog, type CatalogImage } from "./catalog.ts";
import { DockerArchiveSource, OciLayoutSource, RegistrySource, RootfsTarSource, parseSource, type ImageSource, type SourceOptions } from "../oci/index.ts";

export const NAME_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;
export const MAX_NAME_LENGTH = 64;

/** Null when the name is fine, else why not (one clause, for an error message). */
export function nameProblem(name: string): string | null {
  if (name.length === 0) return "it is empty";
  if (name.length > MAX_NAME_LENGTH) return `it is longer than ${MAX_NAME_LENGTH} characters`;
  if (!NAME_PATTERN.test(name)) return "use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit";
  return null;
}

/** Folds any text into the name charset: lowercase, other runs become "-", trimmed to 64. */
export function sanitizeName(text: string): string {
  let s = text.toLowerCase().replace(/[^a-z0-9._-]+/g, "-");
  s = s.replace(/^[^a-z0-9]+/, "").slice(0, MAX_NAME_LENGTH);
  // A trailing separator is left over from a cut or from "name:" and reads like a typo.
  return s.replace(/[._-]+$/, "");
}

const TAR_SUFFIX = /\.(tar(\.(gz|zst|zstd|xz|bz2))?|tgz|tzst)$/i;

/** Picks the name for a pull without --name. `id` is the new image's id (stdin has nothing else to go by). */
export function defaultImageName(source: ImageSource, id: string): string {
  let base: string;
  if (source instanceof RegistrySource) {
    const repo = source.ref.repository.split("/").pop()!;
    // A digest pins the image, so it names it too; a tag next to it is only a hint.
    base = source.ref.digest ? `${repo}-${source.ref.digest.slice("sha256:".length, "sha256:".length + 12)}` : `${repo}-${source.ref.tag ?? "latest"}`;
  } else if (source instanceof OciLayoutSource) {
    base = path.basename(source.dir) + (source.tag ? `-${source.tag}` : "");
  } else if (source instanceof DockerArchiveSource) {
    base = path.basename(source.file).replace(TAR_SUFFIX, "") + (source.tag ? `-${source.tag}` : "");
  } else if (source instanceof CatalogSource) {
    base = source.entry.name;
  } else if (source instanceof RootfsTarSource) {
    base = source.file === "-" ? `stdin-${id.slice(0, 8)}` : path.basename(source.file).replace(TAR_SUFFIX, "");
  } else {
    base = "";
  }
  return sanitizeName(base) || `image-${id.slice(0, 8)}`;
}

/**
 * Parses a source string and pins file paths to absolute ones, so the record says where the
 * image came from whatever directory a later command runs in. `normalized` is what records keep.
 */
export function openSource(text: string, opts: SourceOptions, catalog?: { images: CatalogImage[]; arch: string; bundleDir: string }): { source: ImageSource; normalized: string } {
  // A catalog name comes first; anything else (debian:bookworm, oci:DIR, ...) is an OCI source.
  const entry = catalog ? findInCatalog(catalog.images, text, catalog.arch) : null;
  if (entry && catalog) {
    const source = new CatalogSource(entry, catalog.bundleDir, opts.signal);
    return { source, normalized: source.describe() };
  }
  const parsed = parseSource(text, opts);
  let source: ImageSource = parsed;
  if (parsed instanceof RootfsTarSource && parsed.file !== "-") source = new RootfsTarSource(path.resolve(parsed.file), opts);
  else if (parsed instanceof OciLayoutSource) source = new OciLayoutSource(path.resolve(parsed.dir), parsed.tag, { diffIds: opts.diffIds });
  else if (parsed instanceof DockerArchiveSource) source = new DockerArchiveSource(path.resolve(parsed.file), parsed.tag, { diffIds: opts.diffIds });
  const normalized = source instanceof RootfsTarSource && source.file === "-" ? "-" : source.describe();
  return { source, normalized };
}
