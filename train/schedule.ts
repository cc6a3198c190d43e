// Learning-rate schedule of apt-spec §6.3: HF `get_polynomial_decay_schedule_with_warmup` with power 1 and
// end_lr 0, i.e. a linear warmup 0 -> lr over W = int(0.1 * T) optimizer steps, then a linear decay to 0 at step T.
// The schedule is a multiplier applied to each parameter group's own initial lr (head / cross-modal multipliers
// are kept), and it is stepped once per optimizer step (not per micro-batch).
// Does not: own an optimizer's moments, or know about epochs (callers compute T from loader length, epochs and
// accumulation: T = len(loader) * epochs // accumulate, as the reference does).
// Invariants: lrAt(step) is a pure function of (step, T, W, baseLr, endLr, power); step 0 gives 0 when W > 0;
// for step >= T the lr is endLr.

/** Warmup steps of the reference: int(0.1 * T) (a fraction, or an absolute count when >= 1 and integral). */
export function warmupSteps(totalSteps: number, warmup: number = 0.1): number {
  if (!(Number.isInteger(totalSteps) && totalSteps >= 0)) throw new Error(`schedule: total steps must be a non-negative integer, got ${totalSteps}`);
  if (!(warmup >= 0)) throw new Error(`schedule: warmup must be >= 0, got ${warmup}`);
  return warmup < 1 ? Math.floor(warmup * totalSteps) : Math.floor(warmup);
}

export interface PolySchedule {
  totalSteps: number;
  warmupSteps: number;
  /** lr at the end of the decay (HF lr_end; the reference uses 0) */
  endLr?: number;
  power?: number;
}

/**
 * HF polynomial decay with warmup, as the absolute lr of a group whose initial lr is `baseLr`:
 *   step < W:       baseLr * step / max(1, W)
 *   step >= T:      endLr
 *   otherwise:      (baseLr - endLr) * (1 - (step - W) / (T - W))^power + endLr
 * (HF computes this as a LambdaLR multiplier lr_t / lr_init, which equals this value divided by baseLr.)
 */
export function polyLr(step: number, baseLr: number, s: PolySchedule): number {
  const W = s.warmupSteps, T = s.totalSteps, end = s.endLr ?? 0, power = s.power ?? 1;
  if (!(Number.isInteger(step) && step >= 0)) throw new Error(`schedule: step must be a non-negative integer, got ${step}`);
  if (step < W) return (baseLr * step) / Math.max(1, W);
  if (step >= T) return end;
  if (!(baseLr > end)) return end; // HF raises when lr_end > lr_init; with equal values the decay is flat
  const remaining = 1 - (step - W) / (T - W);
  return (baseLr - end) * remaining ** power + end;
}

/** Multiplier lr_t / lr_init (what HF's LambdaLR returns). */
export function polyMultiplier(step: number, baseLr: number, s: PolySchedule): number {
  return baseLr === 0 ? 0 : polyLr(step, baseLr, s) / baseLr;
}

/** Anything with parameter groups whose `lr` the schedule sets from `initialLr` (train/optim.ts AdamW / SGD). */
export interface ScheduledOptimizer {
  groups: { lr: number; readonly initialLr: number }[];
}

/**
 * A stateful scheduler like torch's LambdaLR: construction sets the step-0 lr; `step()` advances one optimizer step
 * and sets every group's lr. The multiplier is computed with the FIRST group's initial lr as lr_init (HF's
 * lr_end / lr_init ratio uses the optimizer default lr) and applied to each group's own initial lr.
 */
export class PolynomialDecayWithWarmup {
  private stepCount = 0;
  constructor(readonly optimizer: ScheduledOptimizer, readonly schedule: PolySchedule, readonly refLr = optimizer.groups[0]?.initialLr ?? 0) {
    if (!(Number.isInteger(schedule.totalSteps) && schedule.totalSteps >= 0)) throw new Error(`schedule: totalSteps must be a non-negative integer, got ${schedule.totalSteps}`);
    if (!(Number.isInteger(schedule.warmupSteps) && schedule.warmupSteps >= 0)) throw new Error(`schedule: warmupSteps must be a non-negative integer, got ${schedule.warmupSteps}`);
    this.apply();
  }
  /** Optimizer steps taken so far. */
  get step_(): number { return this.stepCount; }
  multiplier(step = this.stepCount): number { return polyMultiplier(step, this.refLr, this.schedule); }
  step(): void { this.stepCount++; this.apply(); }
  /** Jump to `step` (checkpoint resume). */
  setStep(step: number): void {
    if (!(Number.isInteger(step) && step >= 0)) throw new Error(`schedule: step must be a non-negative integer, got ${step}`);
    this.stepCount = step;
    this.apply();
  }
  private apply(): void {
    const m = this.multiplier();
    for (const g of this.optimizer.groups) g.lr = g.initialLr * m;
  }
}
