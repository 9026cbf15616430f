// broker-config's numeric flags: a port past 65535, client and route ports that collide, or a cluster too large to
// write are refused with one line, no node configuration written.
import assert from "node:assert/strict";
import { brokerConfigMain } from "../src/cli/broker_config.ts";

Deno.test("broker-config - ports beyond 65535, client ports on route ports and --cluster 100000 are refused", async () => {
  const dir = await Deno.makeTempDir();
  const out = `${dir}/conf`;
  try {
    const refused = (args: string[], re: RegExp) => assert.rejects(() => brokerConfigMain(["--out", out, ...args]), re);
    await refused(["--port", "99999"], /--port must be a TCP port from 1 to 65535: current value is 99999/);
    await refused(["--cluster", "3", "--port", "65534"], /--port .* \(its nodes use 65534-65536\)/);
    await refused(["--cluster", "3", "--route-port", "70000"], /--route-port must be a TCP port/);
    await refused(["--cluster", "3", "--port", "6221"], /--port 6221 and --route-port 6222 overlap/);
    await refused(["--cluster", "100000"], /--cluster takes at most 32 nodes: current value is 100000/);
    await assert.rejects(() => Deno.stat(`${out}/node-1.conf`), Deno.errors.NotFound);
    assert.equal(await brokerConfigMain(["--out", out, "--cluster", "3", "--port", "65533"]), 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
