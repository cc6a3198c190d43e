// The progress display (train/progress.ts) on a fake stream and clock: the terminal bar (step/total, epoch, smoothed
// loss, running metric, steps/s, ETA; evaluations and messages printed above a cleared bar), plain lines every N
// steps off a terminal, JSON lines only in json mode, and the string-log adapter used by pretrain.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Progress, formatDuration, progressMode, type ProgressStream } from '../../train/progress.ts';

function sink(isTTY: boolean): ProgressStream & { text: string } {
  const s = { text: '', isTTY, columns: 120, write(x: string) { s.text += x; return true; } };
  return s;
}

test('formatDuration and the mode choice', () => {
  assert.is(formatDuration(5), '0:05');
  assert.is(formatDuration(3725), '1:02:05');
  assert.is(formatDuration(Infinity), '?');
  assert.is(progressMode(true, sink(true)), 'json');
  assert.is(progressMode(false, sink(true)), 'bar');
  assert.is(progressMode(false, sink(false)), 'lines');
});

test('bar mode: one redrawn line with rate and ETA; evaluations above it', () => {
  const err = sink(true), out = sink(false);
  let t = 0;
  const p = new Progress({ mode: 'bar', total: 100, stream: err, out, now: () => t, metricName: 'acc' });
  for (let s = 1; s <= 10; s++) { t = s * 250; p.record({ type: 'train', step: s, epoch: 0, loss: 2, metric: 0.5 }); }
  const last = err.text.split('\r\x1b[2K').pop()!;
  assert.match(last, /^\[###\.+\] step 10\/100  epoch 0  loss 2\.0000  acc 0\.5000  4\.00 steps\/s  ETA 0:23$/);
  assert.not.match(err.text, /\n/, 'nothing but the bar so far');
  p.record({ type: 'eval', step: 10, epoch: 0, accuracy: 0.75, count: 48 });
  assert.match(err.text, /\r\x1b\[2Keval @ step 10 \(epoch 0\): accuracy 0\.7500, count 48\n\r\x1b\[2K\[###/);
  p.message('SIGINT: finishing the current step');
  assert.match(err.text, /SIGINT: finishing the current step\n\r\x1b\[2K\[/);
  p.finish();
  assert.ok(err.text.endsWith('\r\x1b[2K'));
  assert.is(out.text, '', 'nothing on stdout');
});

test('lines mode: a plain line every N steps and the last; json mode: records only on stdout', () => {
  const err = sink(false);
  let t = 0;
  const p = new Progress({ mode: 'lines', total: 7, every: 3, stream: err, out: sink(false), now: () => (t += 1000) });
  for (let s = 1; s <= 7; s++) p.record({ type: 'train', step: s, epoch: 1, loss: 1, metric: 0 });
  const lines = err.text.trim().split('\n');
  assert.equal(lines.map((l) => /step (\d+)/.exec(l)![1]), ['3', '6', '7']);
  assert.not.match(err.text, /\x1b/, 'no escape codes off a terminal');
  assert.match(lines[2], /^step 7\/7  epoch 1  loss 1\.0000  metric 0\.0000  1\.00 steps\/s  ETA 0:00$/);
  const out = sink(false), e2 = sink(false);
  const j = new Progress({ mode: 'json', stream: e2, out });
  j.log(JSON.stringify({ type: 'train', step: 1, loss: 3 }));
  j.log('a text line');
  assert.is(out.text, '{"type":"train","step":1,"loss":3}\n');
  assert.is(e2.text, 'a text line\n');
});

test('the string-log adapter: JSON lines are records (gates too), other lines messages', () => {
  const err = sink(false);
  const p = new Progress({ mode: 'lines', total: 20, every: 10, stream: err, out: sink(false), now: () => 0 });
  p.log('pretrain vilt: hidden 64');
  p.log(JSON.stringify({ type: 'train', step: 10, loss: 5, itm: 0.7 }));
  p.log(JSON.stringify({ type: 'gate', step: 10, itmAcc: 0.8, seconds: 3 }));
  assert.equal(err.text.trim().split('\n'), ['pretrain vilt: hidden 64', 'step 10/20  epoch 0  loss 5.0000', 'gates @ step 10: itmAcc 0.8000']);
});

test.run();
