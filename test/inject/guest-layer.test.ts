// The guest layer (src/inject): which boot path a merged tree takes, and what merging banger's
// files on top does to an image's own files, through the real LayerMerger.
import { describe, expect, test } from "bun:test";
import { detectInit, guestLayer, kernelCommandLine, type GuestAssets } from "../../src/inject/index.ts";
import { LayerMerger } from "../../src/merge/index.ts";
import type { TarEntry } from "../../src/tar/reader.ts";
import { resolvePath, type FsNode } from "../../src/tree/index.ts";
import { dir, file, symlink } from "../merge/factory.ts";

function merged(...layers: TarEntry[][]): LayerMerger {
  const m = new LayerMerger();
  layers.forEach((l, i) => {
    m.beginLayer(i, `layer ${i + 1}`);
    for (const e of l) m.add(e);
    m.endLayer();
  });
  return m;
}

const assets: GuestAssets = {
  files: [
    { path: "/usr/local/libexec/banger-init", mode: 0o755, for: ["banger-init"], text: "#!/bin/sh\n# init\n" },
    { path: "/usr/local/libexec/banger-network-bootstrap", mode: 0o755, for: ["systemd", "banger-init"], text: "#!/bin/sh\n# net\n" },
    { path: "/etc/systemd/system/banger-network.service", mode: 0o644, for: ["systemd"], text: "[Unit]\n" },
  ],
  links: [{ path: "/etc/systemd/system/multi-user.target.wants/banger-network.service", target: "/etc/systemd/system/banger-network.service", for: ["systemd"] }],
};

function at(root: FsNode, path: string): FsNode | undefined {
  return resolvePath(root, path)?.node;
}

/** Debian's merged /usr: /sbin -> usr/sbin, /usr/sbin/init -> ../lib/systemd/systemd. */
const debianSystemd = [dir("usr/lib/systemd"), file("usr/lib/systemd/systemd"), dir("usr/sbin"), symlink("usr/sbin/init", "../lib/systemd/systemd"), symlink("sbin", "usr/sbin"), symlink("lib", "usr/lib")];

describe("init detection", () => {
  test("/sbin/init through merged-/usr links to systemd: the image's systemd boots it", () => {
    const c = detectInit(merged(debianSystemd).root);
    expect(c).toEqual({ kind: "systemd", imageInit: "/usr/lib/systemd/systemd" });
    expect(kernelCommandLine(c.kind)).toBe("console=ttyS0 root=/dev/vda rw");
  });

  test("no /sbin/init, busybox init, a dangling or looping link: banger-init", () => {
    expect(detectInit(merged([dir("bin"), file("bin/sh")]).root).kind).toBe("banger-init");
    const busybox = detectInit(merged([dir("bin"), file("bin/busybox"), dir("sbin"), symlink("sbin/init", "/bin/busybox")]).root);
    expect(busybox).toEqual({ kind: "banger-init", imageInit: "/bin/busybox" });
    expect(detectInit(merged([dir("sbin"), symlink("sbin/init", "/lib/systemd/systemd")]).root)).toEqual({ kind: "banger-init", imageInit: null });
    expect(detectInit(merged([dir("sbin"), symlink("sbin/init", "init2"), symlink("sbin/init2", "init")]).root).imageInit).toBeNull();
    expect(kernelCommandLine("banger-init")).toBe("console=ttyS0 root=/dev/vda rw init=/usr/local/libexec/banger-init");
  });

  test("an upper layer that deletes systemd turns the image into a banger-init one", () => {
    expect(detectInit(merged(debianSystemd, [file("usr/lib/systemd/.wh.systemd", { size: 0 })]).root).kind).toBe("banger-init");
  });
});

describe("the guest layer, merged on top", () => {
  function withGuest(base: TarEntry[], init: "systemd" | "banger-init") {
    const m = merged(base);
    const layer = guestLayer(m.root, assets, { init, authorizedKeys: "ssh-ed25519 AAAA banger", time: { sec: 1_700_000_000, nsec: 0 } });
    m.beginLayer(1, "guest");
    for (const e of layer.entries) m.add(e);
    m.endLayer();
    return { root: m.root, layer };
  }

  test("systemd images get units and enable links, not banger-init; every file is root-owned with its mode", () => {
    const { root, layer } = withGuest(debianSystemd, "systemd");
    expect(at(root, "/usr/local/libexec/banger-init")).toBeUndefined();
    const unit = at(root, "/etc/systemd/system/banger-network.service")!;
    expect([unit.kind, unit.mode, unit.uid, unit.gid, unit.size]).toEqual(["file", 0o644, 0, 0, "[Unit]\n".length]);
    const link = root.children!.get("etc")!.children!.get("systemd")!.children!.get("system")!.children!.get("multi-user.target.wants")!.children!.get("banger-network.service")!;
    expect([link.kind, link.target]).toEqual(["symlink", "/etc/systemd/system/banger-network.service"]);
    expect(at(root, "/usr/local/libexec/banger-network-bootstrap")!.mode).toBe(0o755);
    expect(layer.injected).toContain("/etc/systemd/system/multi-user.target.wants/banger-network.service");
    expect(layer.injected).toContain("/var/lib/banger/first-boot-pending");
  });

  test("banger-init images get banger-init and no units", () => {
    const { root } = withGuest([dir("bin"), file("bin/sh")], "banger-init");
    expect(at(root, "/usr/local/libexec/banger-init")!.mode).toBe(0o755);
    expect(at(root, "/etc/systemd")).toBeUndefined();
  });

  test("the file's bytes are the asset's text, read through the layer's own source", () => {
    const { root, layer } = withGuest([], "banger-init");
    const node = at(root, "/usr/local/libexec/banger-init")!;
    const buf = new Uint8Array(node.size);
    layer.source.readInto(buf, node.data!.offset);
    expect(new TextDecoder().decode(buf)).toBe("#!/bin/sh\n# init\n");
    expect(node.data!.source).toBe(1);
  });

  test("a file the image has at a guest path is replaced, not duplicated; /root/.ssh gets 0700 and the key 0600", () => {
    const base = [dir("root", { mode: 0o750 }), dir("root/.ssh", { mode: 0o777, uid: 1000 }), file("root/.ssh/authorized_keys", { mode: 0o644, size: 99 }), dir("usr/local/libexec"), file("usr/local/libexec/banger-init", { size: 5 })];
    const { root } = withGuest(base, "banger-init");
    const ssh = at(root, "/root/.ssh")!;
    expect([ssh.mode, ssh.uid]).toEqual([0o700, 0]);
    const keys = at(root, "/root/.ssh/authorized_keys")!;
    expect([keys.mode, keys.size, keys.data!.source]).toEqual([0o600, "ssh-ed25519 AAAA banger\n".length, 1]);
    expect(at(root, "/root")!.mode).toBe(0o750); // the image's own /root keeps its metadata
    expect(at(root, "/usr/local/libexec/banger-init")!.size).toBe("#!/bin/sh\n# init\n".length);
    expect([...root.children!.get("usr")!.children!.get("local")!.children!.get("libexec")!.children!.keys()].sort()).toEqual(["banger-init", "banger-network-bootstrap"]);
  });

  test("an image without /root gets one, 0700; a symlinked /usr/local is followed inside the image", () => {
    const { root } = withGuest([dir("opt/local"), symlink("usr/local", "/opt/local")], "banger-init");
    expect(at(root, "/root")!.mode).toBe(0o700);
    expect(root.children!.get("usr")!.children!.get("local")!.kind).toBe("symlink");
    expect(root.children!.get("opt")!.children!.get("local")!.children!.get("libexec")!.children!.has("banger-init")).toBe(true);
  });
});
