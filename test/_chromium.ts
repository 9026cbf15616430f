/** A headless Chromium driven over the DevTools protocol, for tests of the HTML report. */

const CANDIDATES = ["chromium", "chromium-browser", "google-chrome"];

function findChromium(): string {
  for (const bin of CANDIDATES) {
    for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
      try {
        if (Deno.statSync(`${dir}/${bin}`).isFile) return `${dir}/${bin}`;
      } catch { /* next */ }
    }
  }
  throw new Error(
    "no Chromium on PATH: install it (`apt-get install chromium`; deno task test does it: tools/test_setup.ts)",
  );
}

/** What loading a page produced. */
export interface PageReport {
  errors: string[];
  /** The value of `expression` evaluated after load. */
  value: unknown;
  screenshot: Uint8Array;
}

/**
 * Opens `url` in a fresh headless Chromium, collects console errors and uncaught exceptions while it loads,
 * evaluates `expression` (JSON-serialisable result) and takes a full-page screenshot.
 */
export async function loadPage(url: string, expression: string): Promise<PageReport> {
  const profile = await Deno.makeTempDir();
  const proc = new Deno.Command(findChromium(), {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      `--user-data-dir=${profile}`,
      "--remote-debugging-port=0",
      "--window-size=1200,900",
      "about:blank",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  try {
    const reader = proc.stderr.pipeThrough(new TextDecoderStream()).getReader();
    let text = "", ws = "";
    const deadline = Date.now() + 30_000;
    while (!ws && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
      ws = text.match(/DevTools listening on (ws:\/\/\S+)/)?.[1] ?? "";
    }
    if (!ws) throw new Error(`Chromium did not start: ${text.slice(-500)}`);
    (async () => {
      while (!(await reader.read()).done) { /* drain */ }
    })();
    return await drive(ws, url, expression);
  } finally {
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
    await proc.status;
    await Deno.remove(profile, { recursive: true }).catch(() => {});
  }
}

async function drive(wsUrl: string, url: string, expression: string): Promise<PageReport> {
  const sock = new WebSocket(wsUrl);
  await new Promise((res, rej) => {
    sock.onopen = res;
    sock.onerror = rej;
  });
  let nextId = 1;
  const pending = new Map<number, (msg: { result?: unknown; error?: unknown }) => void>();
  const errors: string[] = [];
  let loaded: () => void;
  const loadedP = new Promise<void>((r) => (loaded = r));
  sock.onmessage = (e) => {
    const msg = JSON.parse(e.data as string);
    if (msg.id && pending.has(msg.id)) {
      pending.get(msg.id)!(msg);
      pending.delete(msg.id);
    } else if (msg.method === "Runtime.exceptionThrown") {
      errors.push(
        `exception: ${msg.params.exceptionDetails.exception?.description ?? msg.params.exceptionDetails.text}`,
      );
    } else if (msg.method === "Runtime.consoleAPICalled" && msg.params.type === "error") {
      errors.push(`console.error: ${msg.params.args.map((a: { value?: unknown }) => a.value).join(" ")}`);
    } else if (msg.method === "Log.entryAdded" && msg.params.entry.level === "error") {
      errors.push(`log: ${msg.params.entry.text} ${msg.params.entry.url ?? ""}`);
    } else if (msg.method === "Page.loadEventFired") {
      loaded();
    }
  };
  const send = (method: string, params: Record<string, unknown> = {}, sessionId?: string) =>
    new Promise<Record<string, unknown>>((res, rej) => {
      const id = nextId++;
      pending.set(
        id,
        (
          m,
        ) => (m.error
          ? rej(new Error(`${method}: ${JSON.stringify(m.error)}`))
          : res(m.result as Record<string, unknown>)),
      );
      sock.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  try {
    const { targetId } = await send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true }) as { sessionId: string };
    for (const domain of ["Runtime", "Log", "Page"]) await send(`${domain}.enable`, {}, sessionId);
    await send("Page.navigate", { url }, sessionId);
    await Promise.race([
      loadedP,
      new Promise((_, rej) => setTimeout(() => rej(new Error("page load timed out")), 30_000)),
    ]);
    const ev = await send("Runtime.evaluate", { expression, returnByValue: true }, sessionId) as {
      result: { value: unknown };
    };
    const shot = await send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true }, sessionId) as {
      data: string;
    };
    const screenshot = Uint8Array.from(atob(shot.data), (c) => c.charCodeAt(0));
    return { errors, value: ev.result.value, screenshot };
  } finally {
    sock.close();
  }
}
