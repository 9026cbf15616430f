/**
 * `runs/<sweep>/broker.json`: how to reach the private broker a sweep started (URL and its random token),
 * readable by the owner only, so that `status` and `cancel` from another terminal find it.
 */
export interface BrokerFile {
  url: string;
  token: string;
}

export async function writeBrokerFile(runDir: string, b: BrokerFile): Promise<void> {
  await Deno.mkdir(runDir, { recursive: true });
  await Deno.writeTextFile(`${runDir}/broker.json`, JSON.stringify(b) + "\n", { mode: 0o600 });
}

export async function readBrokerFile(runDir: string): Promise<BrokerFile | null> {
  try {
    return JSON.parse(await Deno.readTextFile(`${runDir}/broker.json`)) as BrokerFile;
  } catch {
    return null;
  }
}

export async function removeBrokerFile(runDir: string): Promise<void> {
  await Deno.remove(`${runDir}/broker.json`).catch(() => {});
}
