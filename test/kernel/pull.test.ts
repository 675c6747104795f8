// `banger kernel pull` from a kernel catalog (BANGER_KERNEL_CATALOG) served by a loopback HTTP
// server (fileServer: raw socket, Range, answers cut mid-body). With Debian's cloud kernel, as a
// process: a pull, a checksum mismatch and a cut download resumed. Through KernelService with
// synthetic kernels (fast retries): a download failing every time and resumed by the next pull,
// hostile bundles, wrong sizes and architectures. After every failure: no kernel directory, no
// staging directory, no row, no bundle in the cache.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { formatBytes } from "../../src/cli/progress.ts";
import { KernelService } from "../../src/daemon/kernel-service.ts";
import { SqliteKernelStore } from "../../src/daemon/kernel-store.ts";
import { makeKernelBundle } from "../../src/daemon/make-kernel-bundle.ts";
import { bangerPaths } from "../../src/daemon/paths.ts";
import { SqliteImageStore } from "../../src/daemon/store.ts";
import type { CatalogKernel } from "../../src/daemon/kernel-catalog.ts";
import { testWith } from "../helpers/env.ts";
import { TarBuilder } from "../helpers/tarwriter.ts";
import { banger, CLOUD, CLOUD_ABSENT, fakeBzImage, fakeModulesTree, fileServer, listAll, sha256, smallModulesTree, snapshot, xdgEnv, zstd, type FileServer } from "./lib.ts";

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "banger-kernel-pull-"));
let server: FileServer;
beforeAll(async () => {
  server = await fileServer();
});
afterAll(async () => {
  await server.stop();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const entry = (name: string, file: string, over: Partial<CatalogKernel> = {}): CatalogKernel => {
  const bytes = server.files.get(file)!;
  return { name, arch: "amd64", url: server.url(file), sha256: sha256(bytes), size: bytes.length, ...over };
};
const requestsFor = (file: string) => server.requests.filter((r) => r.path === file);

describe("with Debian's cloud kernel, as a process", () => {
  const env = xdgEnv(path.join(tmp, "cli"));
  const paths = bangerPaths(env);
  const catalogFile = path.join(tmp, "kernel-catalog.json");
  const cliEnv = { ...env, BANGER_KERNEL_CATALOG: catalogFile };
  let modules = "";

  beforeAll(async () => {
    if (!CLOUD) return;
    modules = smallModulesTree(path.join(tmp, "mods"), CLOUD.modules, CLOUD.version);
    const made = makeKernelBundle({ kernel: CLOUD.kernel, initrd: CLOUD.initrd, modules, out: path.join(tmp, "cloud.tar.zst"), level: 3 });
    const bytes = new Uint8Array(fs.readFileSync(made.path));
    for (const f of ["/cloud.tar.zst", "/cut.tar.zst"]) server.files.set(f, bytes);
    const kernels = [entry("cloud", "/cloud.tar.zst"), entry("cut", "/cut.tar.zst"), entry("bad-sum", "/cloud.tar.zst", { sha256: "ab".repeat(32) })];
    // An entry for another architecture is never picked on this host.
    kernels.push({ ...kernels[0]!, arch: "riscv64", name: "elsewhere" });
    fs.writeFileSync(catalogFile, JSON.stringify({ kernels }));
  }, 60_000);

  /** Nothing in the store beyond these kernels, and nothing in the download cache. */
  function expectClean(names: string[]): void {
    const s = SqliteImageStore.open(paths.dbPath);
    const rows = s.database.query<{ name: string; id: string }, []>("SELECT name, id FROM kernels ORDER BY name").all();
    s.close();
    expect(rows.map((r) => r.name)).toEqual(names);
    expect(fs.existsSync(paths.kernelsDir) ? fs.readdirSync(paths.kernelsDir).sort() : []).toEqual(rows.map((r) => r.id).sort());
    expect(listAll(paths.kernelDownloadDir)).toEqual([]);
  }

  testWith({ absent: CLOUD_ABSENT }, "pull downloads the bundle, unpacks it and publishes the kernel; the files are the package's", async () => {
    const r = await banger(["kernel", "pull", "cloud", "--json"], cliEnv);
    expect(r.code).toBe(0);
    const rec = JSON.parse(r.stdout);
    expect(rec).toMatchObject({ name: "cloud", version: CLOUD!.version, arch: "amd64", source: server.url("/cloud.tar.zst"), sha256: sha256(CLOUD!.kernel) });
    expect(sha256(rec.kernelPath)).toBe(sha256(CLOUD!.kernel));
    expect(sha256(rec.initrdPath)).toBe(sha256(CLOUD!.initrd));
    expect(rec.modulesPath).toBe(path.join(paths.kernelsDir, rec.id, "modules", CLOUD!.version));
    // The bundle leaves out the symlink that points out of the tree; everything else arrives as it was.
    expect(snapshot(rec.modulesPath)).toEqual(snapshot(modules).filter((e) => e.path !== "build"));
    // Plain progress on a pipe: one line per step.
    const steps = r.stderr.trim().split("\n");
    expect(steps[0]).toBe(`download: ${server.url("/cloud.tar.zst")}`);
    expect(steps[1]).toMatch(/^downloading \d+\.\d MiB$/);
    expect(steps[2]).toMatch(/^downloaded \d+\.\d MiB in \d+\.\d s$/);
    expect(steps.slice(3)).toEqual(["unpack", "publish: cloud"]);
    expect(requestsFor("/cloud.tar.zst")).toEqual([{ path: "/cloud.tar.zst", range: null }]);
    expectClean(["cloud"]);
    const show = await banger(["kernel", "show", "cloud", "--json"], cliEnv);
    expect(JSON.parse(show.stdout)).toEqual(rec);
  }, 60_000);

  testWith({ absent: CLOUD_ABSENT }, "a checksum mismatch is one line; the download is discarded and nothing is kept", async () => {
    const r = await banger(["kernel", "pull", "bad-sum", "--quiet"], cliEnv);
    expect(r.code).toBe(1);
    const real = sha256(server.files.get("/cloud.tar.zst")!);
    expect(r.stderr).toBe(`banger kernel pull: kernel "bad-sum": ${server.url("/cloud.tar.zst")} has sha256 ${real}, the catalog says ${"ab".repeat(32)}; the download was discarded\n`);
    expectClean(["cloud"]);
  }, 60_000);

  testWith({ absent: CLOUD_ABSENT }, "a download cut in the middle is resumed with a Range request from where it stopped", async () => {
    server.cut("/cut.tar.zst", 1);
    const r = await banger(["kernel", "pull", "cut", "--json"], cliEnv);
    expect(r.stderr).toContain("retrying after");
    expect(r.code).toBe(0);
    const size = server.files.get("/cut.tar.zst")!.length;
    const reqs = requestsFor("/cut.tar.zst");
    expect(reqs.length).toBe(2);
    expect(reqs[0]!.range).toBeNull();
    // The second asks for the rest only, from what was on disk: at most the half that was sent
    // (Bun's client may drop the last pieces it had buffered when the connection ends early).
    const from = Number(/^bytes=(\d+)-$/.exec(reqs[1]!.range ?? "")?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(size >> 1);
    expect(r.stderr).toContain(`resuming at ${formatBytes(from)} of ${formatBytes(size)}`);
    const rec = JSON.parse(r.stdout);
    expect(rec).toMatchObject({ name: "cut", version: CLOUD!.version, sha256: sha256(CLOUD!.kernel) });
    expectClean(["cloud", "cut"]);
  }, 60_000);

  testWith({ absent: CLOUD_ABSENT }, "a name missing from the catalog, or only there for another architecture, lists what there is", async () => {
    for (const name of ["nope", "elsewhere"]) {
      const r = await banger(["kernel", "pull", name], cliEnv);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(`banger kernel pull: no kernel "${name}" for amd64 in the kernel catalog (it has cloud, cut, bad-sum)\n`);
    }
    const broken = path.join(tmp, "broken.json");
    fs.writeFileSync(broken, JSON.stringify({ kernels: [{ name: "x", arch: "amd64", url: "ftp://x", sha256: "0".repeat(64), size: 1 }] }));
    const r = await banger(["kernel", "pull", "x"], { ...env, BANGER_KERNEL_CATALOG: broken });
    expect(r.stderr).toBe(`banger kernel pull: kernel catalog ${broken}: kernels[0].url is missing or invalid\n`);
    // The embedded catalog is empty for now.
    const embedded = await banger(["kernel", "pull", "cloud"], env);
    expect(embedded.stderr).toBe('banger kernel pull: no kernel "cloud" for amd64 in the kernel catalog (it has none for amd64)\n');
  });
});

describe("through KernelService, with synthetic kernels", () => {
  const version = "6.9.0-synth";
  let k = 0;
  /** A service over a fresh state and cache, with fast retries. */
  function service(catalog: CatalogKernel[], arch = "amd64") {
    const root = path.join(tmp, `svc-${k++}`);
    const paths = bangerPaths(xdgEnv(root));
    const db = SqliteImageStore.open(paths.dbPath);
    const store = new SqliteKernelStore(db.database);
    const svc = new KernelService({ paths, store, catalog: () => catalog, arch, retry: { retries: 2, baseDelayMs: 1, maxDelayMs: 2, maxRetryAfterMs: 2 } });
    const clean = () => {
      expect(store.list()).toEqual([]);
      expect(listAll(paths.kernelsDir)).toEqual([]);
    };
    return { svc, paths, store, clean, close: () => db.close() };
  }
  /** Serves a bundle made by make-kernel-bundle from a synthetic kernel and modules tree at `file`. */
  function serveBundle(file: string, kernelVersion = version, modulesVersion = version, padding = 0): void {
    const dir = path.join(tmp, `src-${k++}`);
    fs.mkdirSync(dir);
    const kernel = path.join(dir, "vmlinuz");
    fs.writeFileSync(kernel, fakeBzImage(`${kernelVersion} (t) #1`));
    const mods = fakeModulesTree(dir, modulesVersion);
    // Incompressible bytes make a bundle large enough for a cut answer to deliver some of it.
    if (padding > 0) fs.writeFileSync(path.join(mods, "kernel", "padding.ko"), randomBytes(padding));
    // make-kernel-bundle checks the versions agree; a hostile publisher would not: write the tar by hand then.
    if (kernelVersion === modulesVersion) {
      makeKernelBundle({ kernel, modules: mods, out: path.join(dir, "b.tar.zst"), level: 1 });
      server.files.set(file, new Uint8Array(fs.readFileSync(path.join(dir, "b.tar.zst"))));
    } else {
      const t = new TarBuilder();
      t.file("vmlinuz", fs.readFileSync(kernel));
      t.dir(`modules/${modulesVersion}/`);
      t.file(`modules/${modulesVersion}/modules.dep`, "");
      server.files.set(file, zstd(t.end()));
    }
  }
  function serveTar(file: string, add: (t: TarBuilder) => void): void {
    const t = new TarBuilder();
    t.file("vmlinuz", fakeBzImage(`${version} (t) #1`));
    add(t);
    server.files.set(file, zstd(t.end()));
  }

  test("pull --name stores it under another name; a second pull of a taken name is refused before downloading", async () => {
    serveBundle("/synth.tar.zst");
    const { svc, close } = service([entry("synth", "/synth.tar.zst")]);
    const rec = await svc.pull({ name: "synth", as: "mine" });
    expect(rec).toMatchObject({ name: "mine", version, arch: "amd64", initrdPath: null, source: server.url("/synth.tar.zst") });
    const before = requestsFor("/synth.tar.zst").length;
    await expect(svc.pull({ name: "synth", as: "mine" })).rejects.toThrow('kernel "mine" already exists');
    expect(requestsFor("/synth.tar.zst").length).toBe(before);
    close();
  });

  test("a download cut every time fails after the retries with one line, keeping only the partial file; the next pull resumes it", async () => {
    serveBundle("/flaky.tar.zst", version, version, 2 << 20);
    const e = entry("flaky", "/flaky.tar.zst");
    const { svc, paths, clean, close } = service([e]);
    server.cut("/flaky.tar.zst", 3);
    const events: string[] = [];
    const err = await svc.pull({ name: "flaky", progress: (ev) => ev.type === "download" && events.push(ev.state) }).catch((x: Error) => x);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toStartWith(`kernel "flaky": downloading ${e.url}: `);
    expect((err as Error).message).toMatch(/; the \d+ of \d+ bytes downloaded are kept for the next pull to resume from$/);
    expect((err as Error).message.includes("\n")).toBe(false);
    expect(events.filter((s) => s === "retrying").length).toBe(2);
    expect(events).toContain("resuming");
    clean();
    // Only the partial download is kept (for the next pull), nothing in the store.
    const partial = svc.partialDownload(e);
    expect(listAll(paths.kernelDownloadDir)).toEqual([path.basename(partial)]);
    const have = fs.statSync(partial).size;
    expect(have).toBeGreaterThan(0);
    expect(have).toBeLessThan(e.size);

    const seen = requestsFor("/flaky.tar.zst").length;
    const rec = await svc.pull({ name: "flaky" });
    expect(rec.version).toBe(version);
    expect(requestsFor("/flaky.tar.zst").slice(seen)).toEqual([{ path: "/flaky.tar.zst", range: `bytes=${have}-` }]);
    expect(listAll(paths.kernelDownloadDir)).toEqual([]);
    close();
  });

  test("hostile bundles: an extra member, a ../ path; refused in one line, nothing kept, not even the bundle", async () => {
    serveTar("/extra.tar.zst", (t) => t.file("payload.sh", "#!/bin/sh\n"));
    serveTar("/climb.tar.zst", (t) => t.file("modules/../../../../evil", "x"));
    for (const [name, file, message] of [
      ["extra", "/extra.tar.zst", `kernel "extra": bundle ${server.url("/extra.tar.zst")}: unexpected member "payload.sh" (a kernel bundle holds only vmlinuz or vmlinux, initrd.img and modules/)`],
      ["climb", "/climb.tar.zst", `kernel "climb": bundle ${server.url("/climb.tar.zst")}: member "modules/../../../../evil": ".." is not allowed in a kernel bundle`],
    ] as const) {
      const { svc, paths, clean, close } = service([entry(name, file)]);
      await expect(svc.pull({ name })).rejects.toThrow(message);
      clean();
      expect(listAll(paths.kernelDownloadDir)).toEqual([]);
      expect(fs.existsSync(path.join(paths.stateDir, "evil"))).toBe(false);
      close();
    }
  });

  test("the bundle must be what the catalog says: its size, its architecture, modules of its own version", async () => {
    serveBundle("/sized.tar.zst");
    serveBundle("/mixed.tar.zst", version, "6.9.0-other");
    const sized = entry("sized", "/sized.tar.zst");
    const cases: [CatalogKernel, string, string][] = [
      [{ ...sized, size: sized.size - 10 }, "amd64", `kernel "sized": ${sized.url} is larger than the catalog's ${sized.size - 10} bytes`],
      [{ ...sized, arch: "arm64" }, "arm64", `kernel "sized": bundle ${sized.url}: the kernel is for amd64, the catalog says arm64`],
      [entry("mixed", "/mixed.tar.zst"), "amd64", "vmlinuz is kernel 6.9.0-synth, but the modules in"],
    ];
    for (const [e, arch, message] of cases) {
      const { svc, paths, clean, close } = service([e], arch);
      await expect(svc.pull({ name: e.name })).rejects.toThrow(message);
      clean();
      expect(listAll(paths.kernelDownloadDir)).toEqual([]);
      close();
    }
  });
});
