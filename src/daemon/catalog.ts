// The image catalog: prebuilt bundles by name. Embedded (assets/catalog.json) unless the CLI
// passes another file (BANGER_IMAGE_CATALOG). `image pull <name>` looks here first.
import fs from "node:fs";
import embedded from "../../assets/catalog.json" with { type: "json" };

export interface CatalogImage {
  name: string;
  distro: string;
  arch: string;
  url: string;
  sha256: string;
  size: number;
  kernel_ref?: string;
  description?: string;
}

export function parseCatalog(raw: unknown, where: string): CatalogImage[] {
  const list = (raw as { images?: unknown } | null)?.images;
  if (!Array.isArray(list)) throw new Error(`${where}: expected {"images": [...]}`);
  return list.map((e: unknown, i) => {
    const o = e as Record<string, unknown>;
    const bad = (field: string) => new Error(`${where}: images[${i}].${field} is missing or invalid`);
    for (const k of ["name", "distro", "arch", "url"]) if (typeof o[k] !== "string" || o[k] === "") throw bad(k);
    if (typeof o.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(o.sha256)) throw bad("sha256");
    if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size <= 0) throw bad("size");
    if (!/^https?:\/\//.test(o.url as string)) throw bad("url");
    return {
      name: o.name as string,
      distro: o.distro as string,
      arch: o.arch as string,
      url: o.url as string,
      sha256: o.sha256,
      size: o.size,
      ...(typeof o.kernel_ref === "string" ? { kernel_ref: o.kernel_ref } : {}),
      ...(typeof o.description === "string" ? { description: o.description } : {}),
    };
  });
}

/** The catalog in `file`, or the embedded one. */
export function loadCatalog(file?: string): CatalogImage[] {
  if (!file) return parseCatalog(embedded, "embedded catalog");
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`image catalog ${file}: ${(err as Error).message}`);
  }
  return parseCatalog(raw, `image catalog ${file}`);
}

/** The entry for `name` on `arch`, or null (then the name is an OCI reference). */
export function findInCatalog(catalog: CatalogImage[], name: string, arch: string): CatalogImage | null {
  return catalog.find((e) => e.name === name && e.arch === arch) ?? null;
}
