import { loadKernels } from "../../src/engine/native.ts";
console.log((await loadKernels()).reason);
