// Charts for the bench and chaos harnesses, written as SVG beside their JSON results:
// a picture shows what a table cannot (how completions stall during a fault and catch up
// after it; the shape of the latency tail). Specs are Vega-Lite, rendered headless by Vega
// (no browser, no canvas). The spec builders are plain functions so tests can check them.
import type { TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };

/** One line: the times (seconds since the run started) at which each item finished. */
export interface Series {
  name: string;
  finishedAt: number[];
}

/** A shaded span on the time axis: when a fault was in effect. `to` undefined = until the end. */
export interface Band {
  from: number;
  to?: number;
}

export interface Panel {
  title: string;
  /** Smaller lines under the title (what was done, the counts). */
  subtitle?: string | string[];
  series: Series[];
  bands?: Band[];
}

const WIDTH = 520;

/** Cumulative count of finished items over time, one step line per series. */
function progressLayer(p: Panel, height: number, yTitle: string) {
  const points = p.series.flatMap((s) => {
    const sorted = [...s.finishedAt].sort((a, b) => a - b);
    return [
      { series: s.name, seconds: 0, done: 0 },
      ...sorted.map((t, i) => ({ series: s.name, seconds: +t.toFixed(2), done: i + 1 })),
    ];
  });
  const end = Math.max(0, ...points.map((q) => q.seconds));
  const bands = (p.bands ?? []).map((b) => ({ from: b.from, to: b.to ?? end }));
  return {
    title: { text: p.title, ...(p.subtitle ? { subtitle: p.subtitle } : {}), anchor: 'start' as const },
    width: WIDTH,
    height,
    layer: [
      {
        data: { values: bands },
        mark: { type: 'rect' as const, color: '#d62728', opacity: 0.15 },
        encoding: { x: { field: 'from', type: 'quantitative' as const }, x2: { field: 'to' } },
      },
      {
        data: { values: points },
        mark: { type: 'line' as const, interpolate: 'step-after' as const },
        encoding: {
          x: { field: 'seconds', type: 'quantitative' as const, title: 'seconds since the first start' },
          y: { field: 'done', type: 'quantitative' as const, title: yTitle },
          color: { field: 'series', type: 'nominal' as const, title: null },
        },
      },
    ],
  };
}

/** Latency distribution as a CDF: fraction of items finished within x seconds. */
function cdfLayer(title: string, latencies: { name: string; seconds: number[] }[]) {
  const points = latencies.flatMap((l) => {
    const sorted = [...l.seconds].sort((a, b) => a - b);
    return sorted.map((s, i) => ({ series: l.name, latency: +s.toFixed(3), fraction: (i + 1) / sorted.length }));
  });
  return {
    title,
    width: 360,
    height: 220,
    data: { values: points },
    mark: { type: 'line' as const, interpolate: 'step-after' as const },
    encoding: {
      x: { field: 'latency', type: 'quantitative' as const, title: 'seconds from start to tagged' },
      y: { field: 'fraction', type: 'quantitative' as const, title: 'fraction of emails', axis: { format: '%' } },
      color: { field: 'series', type: 'nominal' as const, title: null },
    },
  };
}

/** The inbound bench: throughput (emails finished over time) beside the latency CDF. */
export function inboundChart(
  title: string,
  throughput: Series[],
  latencies: { name: string; seconds: number[] }[],
): TopLevelSpec {
  if (throughput.length === 0) throw new Error('inboundChart: no series to draw');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    hconcat: [
      progressLayer({ title: 'emails finished over time', series: throughput }, 220, 'emails finished'),
      cdfLayer('latency distribution', latencies),
    ],
    resolve: { scale: { color: 'shared' } },
    config: { font: 'sans-serif', legend: { orient: 'bottom', labelLimit: 400 } },
  } as TopLevelSpec;
}

/** The chaos run: one panel per scenario, workflows closed over time, the fault shaded. */
export function chaosChart(title: string, panels: Panel[]): TopLevelSpec {
  if (panels.length === 0) throw new Error('chaosChart: no scenario to draw');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: 'shaded: the fault in effect' },
    vconcat: panels.map((p) => progressLayer(p, 110, 'closed')),
    config: { font: 'sans-serif', legend: { orient: 'bottom', labelLimit: 400 } },
  } as TopLevelSpec;
}

/** Renders a Vega-Lite spec to an SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  // Both packages are ESM only; this project compiles to CommonJS, hence import().
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
