// The lr schedule of apt-spec §6.3 (HF get_polynomial_decay_schedule_with_warmup, power 1, end 0): values at
// step 0, inside the warmup, at the peak, in the decay and at/after the end; W = int(0.1 T); each group keeps
// its own multiplier; the scheduler's setStep (resume) equals stepping.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { polyLr, polyMultiplier, warmupSteps, PolynomialDecayWithWarmup } from '../../train/schedule.ts';

const close = (a: number, b: number, msg?: string) => assert.ok(Math.abs(a - b) <= 1e-12 + 1e-9 * Math.abs(b), `${msg ?? ''} ${a} != ${b}`);

test('warmup steps are int(0.1 T)', () => {
  assert.is(warmupSteps(100), 10);
  assert.is(warmupSteps(587 * 10), 587);
  assert.is(warmupSteps(9), 0);
  assert.is(warmupSteps(19), 1);
  assert.is(warmupSteps(100, 7), 7, 'an absolute count');
  assert.throws(() => warmupSteps(-1), /total steps/);
});

test('values at warmup, peak, decay and end (T = 100, W = 10, lr 5e-4)', () => {
  const s = { totalSteps: 100, warmupSteps: 10 };
  close(polyLr(0, 5e-4, s), 0, 'step 0');
  close(polyLr(5, 5e-4, s), 2.5e-4, 'half warmup');
  close(polyLr(10, 5e-4, s), 5e-4, 'peak');
  close(polyLr(55, 5e-4, s), 2.5e-4, 'half decay');
  close(polyLr(99, 5e-4, s), 5e-4 / 90, 'last step');
  close(polyLr(100, 5e-4, s), 0, 'end');
  close(polyLr(150, 5e-4, s), 0, 'after the end');
  close(polyMultiplier(30, 5e-4, s), 1 - 20 / 90);
  // no warmup: the first step uses the full lr
  close(polyLr(0, 1, { totalSteps: 4, warmupSteps: 0 }), 1);
  close(polyLr(3, 1, { totalSteps: 4, warmupSteps: 0 }), 0.25);
});

test('the scheduler applies the multiplier to each group\'s own lr, and setStep equals stepping', () => {
  const opt = { groups: [{ lr: 1e-3, initialLr: 1e-3 }, { lr: 1e-2, initialLr: 1e-2 }] };
  const sch = new PolynomialDecayWithWarmup(opt, { totalSteps: 20, warmupSteps: 4 });
  close(opt.groups[0].lr, 0, 'step 0 sets lr 0 during warmup');
  const seen: number[][] = [];
  for (let i = 0; i < 20; i++) { sch.step(); seen.push(opt.groups.map((g) => g.lr)); }
  close(seen[3][0], 1e-3, 'peak group 0');
  close(seen[3][1], 1e-2, 'peak group 1 (x10 head multiplier kept)');
  close(seen[1][1] / seen[1][0], 10);
  close(seen[19][0], 0);
  const opt2 = { groups: [{ lr: 0, initialLr: 1e-3 }, { lr: 0, initialLr: 1e-2 }] };
  const sch2 = new PolynomialDecayWithWarmup(opt2, { totalSteps: 20, warmupSteps: 4 });
  sch2.setStep(7);
  assert.equal(opt2.groups.map((g) => g.lr), seen[6]);
  assert.is(sch2.step_, 7);
});

test.run();
