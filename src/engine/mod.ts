export type { Engine } from "./engine.ts";
export { AUTO_FALLBACK, AUTO_FAST, type EngineChoice, selectEngine } from "./select.ts";
export { createBlasEngine } from "./blas.ts";
export { createJsEngine } from "./js.ts";
export { createTfjsEngine } from "./tfjs.ts";
export { createWebgpuEngine } from "./webgpu/engine.ts";
