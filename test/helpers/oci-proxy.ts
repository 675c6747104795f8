// Fault injectors in front of the real registry, for the failures it cannot produce itself:
// a programmable HTTP proxy (Bun.serve: token server, 429s, corrupted blobs, redirects) and
// a raw-TCP proxy that cuts connections in the middle of a body.
export interface SeenRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
}

export interface Proxy {
  url: string;
  host: string;
  seen: SeenRequest[];
  stop(): void;
}

export async function forward(upstream: string, req: Request): Promise<Response> {
  const u = new URL(req.url);
  const headers = new Headers(req.headers);
  headers.delete("host");
  const res = await fetch(upstream + u.pathname + u.search, { method: req.method, headers, redirect: "manual", body: req.method === "GET" || req.method === "HEAD" ? undefined : await req.arrayBuffer() });
  const out = new Headers(res.headers);
  out.delete("content-encoding");
  out.delete("transfer-encoding");
  return new Response(req.method === "HEAD" ? null : await res.arrayBuffer(), { status: res.status, headers: out });
}

/** HTTP proxy; `handle` may answer a request itself, else it is forwarded to `upstream`. */
export function startProxy(upstream: string, handle?: (req: Request, url: URL, proxyUrl: string) => Promise<Response | undefined> | Response | undefined): Proxy {
  const seen: SeenRequest[] = [];
  let self = "";
  const server = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      seen.push({ method: req.method, path: url.pathname + url.search, headers: Object.fromEntries(req.headers) });
      const mine = handle ? await handle(req, url, self) : undefined;
      return mine ?? forward(upstream, req);
    },
  });
  self = `http://127.0.0.1:${server.port}`;
  return { url: self, host: `127.0.0.1:${server.port}`, seen, stop: () => server.stop(true) };
}

/**
 * Raw TCP proxy that answers each request (one per connection) by fetching it from
 * `upstream`, and for blob GETs chosen by `cut` sends the headers and only the first
 * `cut(...)` body bytes before closing the socket: a connection dropped mid-blob.
 */
export function startCutter(upstream: string, cut: (path: string, n: number) => number | undefined): Proxy {
  const seen: SeenRequest[] = [];
  let blobGets = 0;
  type State = { buf: string; done: boolean; pending: Uint8Array; closeWhenFlushed: boolean };
  const pump = (s: import("bun").Socket<State>) => {
    while (s.data.pending.length > 0) {
      const n = s.write(s.data.pending);
      if (n <= 0) return;
      s.data.pending = s.data.pending.subarray(n);
    }
    // Let the client consume what was sent before the connection drops.
    if (s.data.closeWhenFlushed) setTimeout(() => s.end(), 150);
  };
  const server = Bun.listen<State>({
    hostname: "127.0.0.1",
    port: 0,
    socket: {
      open(s) {
        s.data = { buf: "", done: false, pending: new Uint8Array(0), closeWhenFlushed: false };
      },
      drain(s) {
        pump(s);
      },
      async data(s, chunk) {
        if (s.data.done) return;
        s.data.buf += new TextDecoder().decode(chunk);
        const end = s.data.buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        s.data.done = true;
        const [line, ...lines] = s.data.buf.slice(0, end).split("\r\n");
        const [method, path] = line!.split(" ");
        const headers: Record<string, string> = {};
        for (const l of lines) {
          const i = l.indexOf(":");
          headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        seen.push({ method: method!, path: path!, headers });
        delete headers.host;
        delete headers.connection;
        const res = await fetch(upstream + path, { method, headers, redirect: "manual" });
        const body = new Uint8Array(await res.arrayBuffer());
        let send = body.length;
        if (method === "GET" && path!.includes("/blobs/sha256:") && (res.status === 200 || res.status === 206)) {
          const limit = cut(path!, blobGets++);
          if (limit !== undefined) send = Math.min(limit, body.length);
        }
        const head = [`HTTP/1.1 ${res.status} ${res.statusText || "X"}`];
        res.headers.forEach((v, k) => {
          if (!["content-length", "transfer-encoding", "connection", "content-encoding"].includes(k)) head.push(`${k}: ${v}`);
        });
        head.push(`content-length: ${body.length}`, "connection: close", "", "");
        const headBytes = new TextEncoder().encode(head.join("\r\n"));
        const out = new Uint8Array(headBytes.length + send);
        out.set(headBytes);
        out.set(body.subarray(0, send), headBytes.length);
        s.data.pending = out;
        s.data.closeWhenFlushed = true;
        pump(s);
      },
    },
  });
  return { url: `http://127.0.0.1:${server.port}`, host: `127.0.0.1:${server.port}`, seen, stop: () => server.stop(true) };
}
