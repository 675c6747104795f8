// banger's SSH identity: one ed25519 key pair per user under $XDG_CONFIG_HOME/banger/ssh/,
// made on first use. Its public key goes into every pulled image's /root/.ssh/authorized_keys.
// The key is made with WebCrypto and written in OpenSSH's own formats (the private key as
// "openssh-key-v1", unencrypted), so no ssh-keygen is needed on the host. WebCrypto rather than
// node:crypto: loading node:crypto (and the streams it is built on) took ~11 ms and ~500 page
// faults of the thread that parses a first pull's layer; WebCrypto's key takes ~1 ms.
import fs from "node:fs";
import path from "node:path";

export interface SshKeyPair {
  privateKeyPath: string;
  publicKeyPath: string;
  /** One line: "ssh-ed25519 AAAA... banger". */
  publicKey: string;
}

const KEY_TYPE = "ssh-ed25519";
const COMMENT = "banger";

/** Keys being made in this process, by directory: concurrent pulls must not make two. */
const making = new Map<string, Promise<void>>();

/** The key pair in `dir` (id_ed25519, id_ed25519.pub), made (0600, dir 0700) if missing. */
export async function ensureSshKey(dir: string): Promise<SshKeyPair> {
  const privateKeyPath = path.join(dir, "id_ed25519");
  const publicKeyPath = `${privateKeyPath}.pub`;
  if (!fs.existsSync(privateKeyPath) || !fs.existsSync(publicKeyPath)) {
    let made = making.get(dir);
    if (!made) {
      made = writeNewKey(dir, privateKeyPath, publicKeyPath).finally(() => making.delete(dir));
      making.set(dir, made);
    }
    await made;
  }
  const publicKey = fs.readFileSync(publicKeyPath, "utf8").trim();
  if (!publicKey.startsWith(`${KEY_TYPE} `)) throw new Error(`${publicKeyPath}: not an ed25519 public key (remove it and its private key to have banger make a new pair)`);
  return { privateKeyPath, publicKeyPath, publicKey };
}

async function writeNewKey(dir: string, privateKeyPath: string, publicKeyPath: string): Promise<void> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const pair = await crypto.subtle.generateKey("Ed25519", true, ["sign", "verify"]);
  if (!("privateKey" in pair)) throw new Error("WebCrypto made an ed25519 key without a key pair");
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  if (!jwk.x || !jwk.d) throw new Error("WebCrypto exported an ed25519 key without its public or private part");
  const files = openSshFiles(Buffer.from(jwk.d, "base64url"), Buffer.from(jwk.x, "base64url"), COMMENT);
  // Written under temporary names and renamed, private key last: a crash leaves no half pair.
  const tmp = `${privateKeyPath}.${process.pid}.tmp`;
  fs.writeFileSync(`${tmp}.pub`, files.publicLine, { mode: 0o644 });
  fs.writeFileSync(tmp, files.privatePem, { mode: 0o600 });
  fs.renameSync(`${tmp}.pub`, publicKeyPath);
  fs.renameSync(tmp, privateKeyPath);
}

/** SSH wire format: a uint32 length, then the bytes. */
function sshString(b: Uint8Array | string): Buffer {
  const bytes = typeof b === "string" ? Buffer.from(b) : Buffer.from(b);
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** The OpenSSH public key line and the unencrypted "openssh-key-v1" PEM of an ed25519 key. */
export function openSshFiles(seed: Uint8Array, pub: Uint8Array, comment: string): { publicLine: string; privatePem: string } {
  const pubBlob = Buffer.concat([sshString(KEY_TYPE), sshString(pub)]);
  const check = new DataView(crypto.getRandomValues(new Uint8Array(4)).buffer).getUint32(0);
  let secret = Buffer.concat([u32(check), u32(check), sshString(KEY_TYPE), sshString(pub), sshString(Buffer.concat([seed, pub])), sshString(comment)]);
  // Padded with 1, 2, 3, ... to the cipher block size ("none": 8).
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from("openssh-key-v1\0"), sshString("none"), sshString("none"), sshString(""), u32(1), sshString(pubBlob), sshString(secret)]);
  const b64 = body.toString("base64").replace(/(.{70})/g, "$1\n").replace(/\n$/, "");
  return {
    publicLine: `${KEY_TYPE} ${pubBlob.toString("base64")} ${comment}\n`,
    privatePem: `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`,
  };
}
