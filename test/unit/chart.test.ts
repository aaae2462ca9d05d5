// The SVG charts the bench and chaos harnesses write: the spec carries the right data
// (cumulative counts, fault bands to the end of the run) and Vega renders it headless.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chaosChart, inboundChart, renderSvg } from '../../bench/chart';

// The data of a layer in a spec built by the chart module (vconcat/hconcat panels of layers).
type Layer = { data: { values: Record<string, unknown>[] } };
const panels = (spec: unknown, key: 'vconcat' | 'hconcat') =>
  (spec as Record<string, { layer?: Layer[]; data?: Layer['data'] }[]>)[key];

test('a chaos panel counts closed workflows cumulatively and shades an open-ended fault to the end', () => {
  const spec = chaosChart('chaos', [
    { title: 's3-down', series: [{ name: 'closed', finishedAt: [3, 1, 2, 9] }], bands: [{ from: 1.5, to: 5 }] },
    { title: 'aws-faults', series: [{ name: 'closed', finishedAt: [4, 7] }], bands: [{ from: 0 }] },
  ]);
  const [first, second] = panels(spec, 'vconcat');
  const [bands, line] = first.layer!;
  assert.deepEqual(bands.data.values, [{ from: 1.5, to: 5 }]);
  assert.deepEqual(
    line.data.values.map((p) => [p.seconds, p.done]),
    [
      [0, 0],
      [1, 1],
      [2, 2],
      [3, 3],
      [9, 4],
    ],
  );
  assert.deepEqual(second.layer![0].data.values, [{ from: 0, to: 7 }]);
});

test('the inbound chart draws every series in both the throughput and the latency panel', async () => {
  const spec = inboundChart(
    'bench',
    [
      { name: 'dev', finishedAt: [0.5, 1] },
      { name: 'direct', finishedAt: [0.2] },
    ],
    [{ name: 'dev', seconds: [0.4, 0.1] }],
  );
  const [throughput, latency] = panels(spec, 'hconcat');
  assert.deepEqual([...new Set(throughput.layer![1].data.values.map((p) => p.series))], ['dev', 'direct']);
  assert.deepEqual(
    latency.data!.values.map((p) => [p.latency, p.fraction]),
    [
      [0.1, 0.5],
      [0.4, 1],
    ],
  );
  const svg = await renderSvg(spec);
  assert.match(svg, /^<svg[^>]+xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  for (const text of [
    'emails finished over time',
    'latency distribution',
    'seconds from start to tagged',
    '>dev<',
    '>direct<',
  ])
    assert.ok(svg.includes(text), `SVG lacks ${text}`);
});

test('a chart with nothing to draw is refused with a reason', () => {
  assert.throws(() => chaosChart('chaos', []), /no scenario to draw/);
  assert.throws(() => inboundChart('bench', [], []), /no series to draw/);
});
