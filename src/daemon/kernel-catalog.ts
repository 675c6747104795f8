// The kernel catalog: kernel bundles (src/bundle/kernel-write.ts) by name and architecture.
// Embedded (assets/kernel-catalog.json, empty until banger hosts kernels) unless the caller
// passes another file (the CLI: BANGER_KERNEL_CATALOG). `banger kernel pull <name>` looks here.
import fs from "node:fs";
import embedded from "../../assets/kernel-catalog.json" with { type: "json" };

export interface CatalogKernel {
  name: string;
  /** "amd64", "arm64" */
  arch: string;
  /** http(s) URL of the .tar.zst bundle. */
  url: string;
  /** sha256 (hex) and size in bytes of the bundle file, checked while it downloads. */
  sha256: string;
  size: number;
}

/** The catalog's entries, checked field by field; errors name `where` and the entry. */
export function parseKernelCatalog(raw: unknown, where: string): CatalogKernel[] {
  const list = (raw as { kernels?: unknown } | null)?.kernels;
  if (!Array.isArray(list)) throw new Error(`${where}: expected {"kernels": [...]}`);
  return list.map((e: unknown, i) => {
    const o = (typeof e === "object" && e !== null ? e : {}) as Record<string, unknown>;
    const bad = (field: string) => new Error(`${where}: kernels[${i}].${field} is missing or invalid`);
    for (const k of ["name", "arch", "url"]) if (typeof o[k] !== "string" || o[k] === "") throw bad(k);
    if (!/^https?:\/\//.test(o.url as string)) throw bad("url");
    if (typeof o.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(o.sha256)) throw bad("sha256");
    if (typeof o.size !== "number" || !Number.isSafeInteger(o.size) || o.size <= 0) throw bad("size");
    return { name: o.name as string, arch: o.arch as string, url: o.url as string, sha256: o.sha256, size: o.size };
  });
}

/** The catalog in `file`, or the embedded one. */
export function loadKernelCatalog(file?: string): CatalogKernel[] {
  if (!file) return parseKernelCatalog(embedded, "embedded kernel catalog");
  let raw: unknown;
  try {
    raw = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (err) {
    throw new Error(`kernel catalog ${file}: ${(err as Error).message}`);
  }
  return parseKernelCatalog(raw, `kernel catalog ${file}`);
}
