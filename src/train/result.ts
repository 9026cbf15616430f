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

/** One cut of a trial's ticket ladder: the ticket its mask parameters give at one cut value. */
export interface CutPoint {
  /** The cut value: a test-gate threshold (gates, hard-concrete), a threshold on s (cs), a keep fraction (edge-popup). */
  cut: number;
  sparsity: number;
  /** Weights kept per masked layer. */
  kept: number[];
  /** Test accuracy of the cut's binary ticket. */
  accuracy: number;
  /** Validation accuracy; null without a validation split. */
  val_accuracy: number | null;
  /** SHA-256 of the cut's mask packed as `mask.bin` is. */
  sha256: string;
}

/**
 * A trial's ticket ladder: the cuts, sparsest last, and each weight's level (how many of the cuts keep it), from
 * which every cut's mask is rebuilt: cut `j` keeps exactly the weights of level > j.
 */
export interface CutLadder {
  rule: "test_gate" | "s" | "keep_fraction";
  /** Levels packed `bits` per weight, least significant bit first, layers in order; base64, with its SHA-256. */
  levels: { bits: number; b64: string; sha256: string };
  points: CutPoint[];
}

/** What a finished trial reports (docs/science.md, "What a trial reports"). */
export interface TrialMetrics {
  /** Test accuracy of the binary ticket: the one on the front. */
  accuracy: number;
  /**
   * Validation accuracy of the binary ticket (the one fronts choose on); null without a validation split,
   * absent in results recorded before it existed.
   */
  val_accuracy?: number | null;
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
  /** The ticket ladder (spec `tickets.cuts`); null or absent when there is none. */
  cuts?: CutLadder | null;
  /** Set when the trial was stopped early: the epochs it trained of those planned, and its last rung's epoch. */
  stopped?: { epochs: number; planned_epochs: number; rung_epoch: number };
}
