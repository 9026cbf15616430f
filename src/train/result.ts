import type { PackedTicket } from "../ticket/bits.ts";

/** Sparsity of one masked layer of a ticket. */
export interface LayerSparsity {
  layer: string;
  shape: number[];
  total: number;
  kept: number;
  sparsity: number;
}

/** One point of a trial's loss curve. */
export interface LossPoint {
  epoch: number;
  step: number;
  loss: number;
  task_loss: number;
  train_accuracy: number;
}

/** What a finished trial reports (SCIENCE.md, "What a trial must report"). */
export interface TrialMetrics {
  /** Test accuracy of the binary ticket: the one on the front. */
  accuracy: number;
  /** Test accuracy with the deterministic soft gates, where it differs from the binary ticket's. */
  soft_accuracy: number | null;
  /** Fraction of masked weights removed by the binary ticket. */
  sparsity: number;
  layers: LayerSparsity[];
  masked_layers: string[];
  loss_curve: LossPoint[];
  steps: number;
  steps_per_s: number;
  train_s: number;
  wall_s: number;
  backend: string;
  device: string;
  data: string;
  /** The binary ticket; null for the dense reference, which trains its weights and has none. */
  ticket: PackedTicket | null;
}
