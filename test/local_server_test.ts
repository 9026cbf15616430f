// The private broker: its token goes through an owner-only configuration file, never the command line.
import assert from "node:assert/strict";
import { LOCAL_SERVER_CONFIG, startLocalServer } from "../src/broker/local_server.ts";
import { connectNats } from "../src/broker/nats.ts";
import { rawConnect } from "./_cluster.ts";

Deno.test("local server - the token is in a 0600 config file, not in ps; it is required; extra flags still apply", async () => {
  const dir = await Deno.makeTempDir();
  const token = "tok" + crypto.randomUUID().replaceAll("-", "");
  const server = await startLocalServer(`${dir}/nats`, { token, extraArgs: ["--server_name", "ts-local-test"] });
  try {
    const cmdline = await Deno.readTextFile(`/proc/${server.process.pid}/cmdline`);
    assert.match(cmdline, /nats-server\0-c\0/);
    assert.ok(!cmdline.includes(token), cmdline.replaceAll("\0", " "));
    const conf = `${dir}/nats/${LOCAL_SERVER_CONFIG}`;
    assert.equal((await Deno.stat(conf)).mode! & 0o777, 0o600);
    assert.ok((await Deno.readTextFile(conf)).includes(token));

    const ok = await rawConnect(server.port, { auth_token: token });
    assert.match(ok.info, /"server_name":"ts-local-test"/); // extraArgs reach the server
    assert.match(ok.info, /"auth_required":true/);
    assert.match(ok.answer, /PONG/);
    // refusals in the raw protocol (the node client's socket reports the server's close as an uncaught ECONNRESET)
    assert.match((await rawConnect(server.port, {})).answer, /-ERR 'Authorization Violation'/);
    assert.match((await rawConnect(server.port, { auth_token: "wrong" })).answer, /-ERR 'Authorization Violation'/);

    // a real client with the token gets JetStream, stored in the store directory
    const client = await connectNats({ servers: server.url, token });
    try {
      await client.setup();
      assert.ok((await Deno.stat(`${dir}/nats/jetstream`)).isDirectory);
    } finally {
      await client.close();
    }
  } finally {
    await server.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
