import type { TrialConfig } from "../../spec/schema.ts";
import type { Rng } from "../../util/rng.ts";
import type { FrozenNet } from "../nets/net.ts";
import { ContinuousSparsification } from "./continuous_sparsification.ts";
import { DenseTraining } from "./dense.ts";
import { EdgePopup } from "./edge_popup.ts";
import { BernoulliGates } from "./gates.ts";
import { HardConcreteGates } from "./hard_concrete.ts";
import type { MaskMethod } from "./method.ts";
import type { FusedKernels } from "../../engine/native.ts";

/** The method a trial names, over its frozen network, its random draws from `rng`; `kernels` (native per-weight loops) speed every method up. */
export function createMethod(cfg: TrialConfig, net: FrozenNet, rng: Rng, kernels?: FusedKernels | null): MaskMethod {
  const { method: m, training: t } = cfg;
  switch (m.name) {
    case "gates":
      return new BernoulliGates(net, m, t, rng, { kernels });
    case "hard-concrete":
      return new HardConcreteGates(net, m, t, rng, { kernels });
    case "cs":
      return new ContinuousSparsification(net, m, t, kernels);
    case "edge-popup":
      return new EdgePopup(net, m, t, rng, kernels);
    case "dense":
      return new DenseTraining(net, t, kernels);
  }
}
