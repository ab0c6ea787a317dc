/**
 * The report page: one static HTML file that opens offline. Chart.js (its UMD build) is inlined, the data is
 * embedded as JSON, and the final table, configs and sample completions are plain HTML (readable without
 * scripts). Every metric gets two charts — against the step and against cumulative training wall time — with,
 * per preset, the mean over seeds as a line and the min–max over seeds as a band.
 * @module
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { CohortError } from "../errors.js";
import {
  aggregateCurve,
  type FinalCell,
  finalTable,
  groupByPreset,
  type MetricSpec,
  NOISE_RULE,
  presentMetrics,
} from "./aggregate.js";
import type { ReportSource, RunData, SampleImage, SampleRow } from "./load.js";

/** Line colours, one per preset in order (colour-blind-friendly Tableau 10). */
export const PALETTE = [
  "#1f77b4",
  "#d62728",
  "#2ca02c",
  "#ff7f0e",
  "#9467bd",
  "#8c564b",
  "#e377c2",
  "#17becf",
  "#bcbd22",
  "#7f7f7f",
];

let chartJsCache: string | null = null;

/** The Chart.js UMD bundle, read from the installed package (source-map comment removed: the page is offline). */
export function chartJsSource(): string {
  if (chartJsCache !== null) return chartJsCache;
  let file: string;
  try {
    file = join(dirname(createRequire(import.meta.url).resolve("chart.js")), "chart.umd.min.js");
    chartJsCache = readFileSync(file, "utf8").replace(/\n?\/\/# sourceMappingURL=\S*\s*$/, "\n");
  } catch (e) {
    throw new CohortError(
      `cannot read the chart library (chart.js/dist/chart.umd.min.js): ${(e as Error).message}; run \`npm ci\` (or bash setup.sh)`,
    );
  }
  return chartJsCache;
}

/** Escapes text for HTML content and attribute values. */
export function esc(s: unknown): string {
  return String(s)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** JSON safe to embed in a <script> element. */
function scriptJson(v: unknown): string {
  return JSON.stringify(v)
    .replace(/</g, "\\u003c")
    .replace(/\u2028/g, "\\u2028")
    .replace(/\u2029/g, "\\u2029");
}

function fmtNum(x: number, percent = false): string {
  if (percent) return `${(100 * x).toFixed(1)}%`;
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1000 || a < 1e-3) return x.toExponential(2);
  return x.toPrecision(3);
}

function fmtStd(x: number | null, percent = false): string {
  if (x === null) return "";
  return percent ? ` ± ${(100 * x).toFixed(1)}` : ` ± ${fmtNum(x)}`;
}

function fmtSeconds(s: number): string {
  if (s < 120) return `${s.toFixed(1)} s`;
  if (s < 7200) return `${(s / 60).toFixed(1)} min`;
  return `${(s / 3600).toFixed(2)} h`;
}

export interface RenderOptions {
  /** Adds `<meta http-equiv="refresh">` with this period (seconds), for a page watched while runs go on. */
  refreshS?: number;
  now?: Date;
}

interface ChartSeries {
  preset: string;
  color: string;
  /** [step, wall_s, mean, std|null, min, max, n] per point. */
  points: [number, number, number, number | null, number, number, number][];
}

interface ChartMetric {
  key: string;
  title: string;
  percent: boolean;
  series: ChartSeries[];
}

/** 6 significant digits: plenty for a chart, and a third of the page size of full doubles. */
function round6(x: number): number {
  return Number(x.toPrecision(6));
}

function chartData(src: ReportSource, specs: MetricSpec[], colors: Map<string, string>): ChartMetric[] {
  const groups = groupByPreset(src.runs);
  return specs.map((spec) => ({
    key: spec.key,
    title: spec.title,
    percent: spec.percent === true,
    series: groups
      .map((g) => ({
        preset: g.preset,
        color: colors.get(g.preset) as string,
        points: aggregateCurve(g.withData, spec.key).map(
          (p) =>
            [
              p.step,
              round6(p.wall),
              round6(p.mean),
              p.std === null ? null : round6(p.std),
              round6(p.min),
              round6(p.max),
              p.n,
            ] as ChartSeries["points"][number],
        ),
      }))
      .filter((s) => s.points.length > 0),
  }));
}

function markBadge(cell: FinalCell): string {
  if (cell.best === true) return ' <span class="mark best" title="best mean over seeds">★ best</span>';
  if (cell.withinNoise === true)
    return ` <span class="mark noise" title="${esc(NOISE_RULE)}">≈ best (p=${(cell.p as number).toFixed(2)})</span>`;
  if (cell.withinNoise === false)
    return ` <span class="mark worse" title="${esc(NOISE_RULE)}">below (p=${(cell.p as number).toFixed(3)})</span>`;
  if (cell.best === false && cell.withinNoise === null)
    return ' <span class="mark open" title="fewer than 2 seeds on a side: not decided">n&lt;2</span>';
  return "";
}

function renderTable(src: ReportSource, colors: Map<string, string>): string {
  const { rows, columns, rankBy } = finalTable(src.runs);
  if (rows.length === 0) return '<p class="empty">No runs yet.</p>';
  const head = [
    "<th>preset</th>",
    "<th>seeds</th>",
    "<th>steps</th>",
    ...columns.map((c) => `<th title="${esc(c.key)}">${esc(c.title)}${c.key === rankBy ? " ▼" : ""}</th>`),
    '<th title="Σ time/step_s, mean ± std over seeds">train wall time</th>',
  ].join("");
  const body = rows
    .map((r) => {
      const seedsCell = `${r.finishedSeeds.length}/${r.seeds.length} finished${r.failed.length ? `, <span class="failed">${r.failed.length} failed</span>` : ""}`;
      const steps =
        r.stepsMin === null
          ? "–"
          : `${r.stepsMin === r.stepsMax ? r.stepsMin : `${r.stepsMin}–${r.stepsMax}`}${r.plannedSteps !== null ? ` / ${r.plannedSteps}` : ""}`;
      const cells = columns.map((c) => {
        const cell = r.cells[c.key] as FinalCell;
        if (cell.stats === null) return '<td class="num">–</td>';
        const pct = c.percent === true;
        const title = `per seed: ${cell.values.map((v) => fmtNum(v, pct)).join(", ")}`;
        return `<td class="num" title="${esc(title)}">${fmtNum(cell.stats.mean, pct)}${fmtStd(cell.stats.std, pct)}${markBadge(cell)}</td>`;
      });
      const wall =
        r.wallS === null
          ? "–"
          : `${fmtSeconds(r.wallS.mean)}${r.wallS.std === null ? "" : ` ± ${fmtSeconds(r.wallS.std)}`}`;
      return `<tr><td><span class="swatch" style="background:${colors.get(r.preset)}"></span>${esc(r.preset)}</td><td>${seedsCell}</td><td class="num">${steps}</td>${cells.join("")}<td class="num">${wall}</td></tr>`;
    })
    .join("\n");
  return `<div class="table-wrap"><table id="final-table"><thead><tr>${head}</tr></thead><tbody>\n${body}\n</tbody></table></div>
<p class="note">Final value = each run's last logged value; mean ± sample std over seeds (hover a cell for the
per-seed values). Rows are ranked by ${esc(rankBy ?? "—")}. Marks on higher-is-better columns: ★ best = highest mean;
≈ best = ${esc(NOISE_RULE.replace(/^within noise of the best = /, ""))}; below = the difference is larger than that noise.</p>`;
}

function renderFailures(src: ReportSource): string {
  const failed = src.runs.filter((r) => r.status === "failed");
  if (failed.length === 0) return "";
  const items = failed
    .map(
      (r) =>
        `<li><b>${esc(r.preset)}</b> seed ${esc(r.seed ?? "?")}: <pre class="error">${esc(r.error ?? "failed (no message recorded)")}</pre></li>`,
    )
    .join("\n");
  return `<section id="failures"><h2>Failed runs</h2><ul>${items}</ul></section>`;
}

function renderHeader(src: ReportSource, now: Date): string {
  const counts = new Map<string, number>();
  for (const r of src.runs) counts.set(r.status, (counts.get(r.status) ?? 0) + 1);
  const status = [...counts.entries()].map(([k, v]) => `${v} ${k}`).join(", ");
  const lines = [
    `<div><b>source</b> ${esc(src.dir)}</div>`,
    `<div><b>runs</b> ${src.runs.length} (${esc(status)})</div>`,
  ];
  const m = src.manifest;
  if (m !== null) {
    lines.push(
      `<div><b>config</b> ${esc(m.configFile)}${m.sets.length ? ` ${m.sets.map((s) => `--set ${esc(s)}`).join(" ")}` : ""}</div>`,
    );
    lines.push(
      `<div><b>shared budget</b> ${m.budget.steps} steps × ${m.budget.promptsPerStep} prompts × ${m.budget.groupSize} completions, ≤ ${m.budget.maxNewTokens} new tokens</div>`,
    );
    lines.push(`<div><b>presets</b> ${esc(m.presets.join(", "))} &nbsp; <b>seeds</b> ${esc(m.seeds.join(", "))}</div>`);
  } else if (src.runs.length === 1) {
    const r = src.runs[0] as RunData;
    lines.push(
      `<div><b>preset</b> ${esc(r.preset)} &nbsp; <b>seed</b> ${esc(r.seed ?? "?")} &nbsp; <b>status</b> ${esc(r.status)}</div>`,
    );
  }
  lines.push(`<div><b>generated</b> ${esc(now.toISOString())}</div>`);
  return `<header><h1>Cohort report — ${esc(src.title)}</h1>${lines.join("\n")}</header>`;
}

function renderConfigs(src: ReportSource): string {
  const groups = groupByPreset(src.runs);
  const items = groups
    .map((g) => {
      const r = g.runs.find((x) => x.config !== null);
      if (r === undefined) return `<details><summary>${esc(g.preset)} — not started</summary></details>`;
      return `<details><summary>${esc(g.preset)} — config.json of ${esc(r.name)}${g.runs.length > 1 ? " (other seeds differ only in seed and name)" : ""}</summary><pre>${esc(JSON.stringify(r.config, null, 2))}</pre></details>`;
    })
    .join("\n");
  return `<section id="configs"><h2>Configs</h2>${items}</section>`;
}

function latestRows(rows: readonly SampleRow[], max: number): { step: number; rows: SampleRow[] } | null {
  if (rows.length === 0) return null;
  const step = Math.max(...rows.map((s) => s.step));
  return { step, rows: rows.filter((s) => s.step === step).slice(0, max) };
}

/** The reward functions named in `rows` (first seen first). */
function rewardNames(rows: readonly SampleRow[]): string[] {
  const names = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r.rewards ?? {})) names.add(k);
  return [...names];
}

const score = (v: number | null | undefined) => (typeof v === "number" ? v.toFixed(3) : "–");
const mark = (c: boolean | null) => `<td class="${c ? "ok" : "bad"}">${c === null ? "" : c ? "✓" : "✗"}</td>`;

/** A table of logged rows: prompt, completion, answer, every reward's score (and for rollouts the advantage), ✓/✗. */
function sampleTable(rows: readonly SampleRow[], rollouts: boolean): string {
  const names = rewardNames(rows);
  const head = [
    ...(rollouts ? ["group"] : []),
    "prompt",
    "completion",
    "answer",
    ...names,
    ...(rollouts ? ["reward", "advantage"] : []),
    "",
  ]
    .map((h) => `<th>${esc(h)}</th>`)
    .join("");
  const body = rows
    .map(
      (x) =>
        `<tr>${rollouts ? `<td>${x.group ?? ""}</td>` : ""}<td><code>${esc(x.prompt)}</code></td><td><code>${esc(x.completion)}</code></td><td><code>${esc(x.answer ?? "")}</code></td>` +
        names.map((n) => `<td class="num">${score(x.rewards?.[n])}</td>`).join("") +
        (rollouts ? `<td class="num">${score(x.reward)}</td><td class="num">${score(x.advantage)}</td>` : "") +
        `${mark(x.correct)}</tr>`,
    )
    .join("");
  return `<table class="samples"><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function renderSamples(src: ReportSource): string {
  const groups = groupByPreset(src.runs);
  const blocks = groups.flatMap((g) => {
    for (const r of g.runs) {
      const s = latestRows(r.samples, 6);
      const ro = latestRows(r.rollouts, 16);
      if (s === null && ro === null) continue;
      return [
        ...(s === null
          ? []
          : [
              `<h3>${esc(g.preset)} <small>latest evaluation: step ${s.step}, ${esc(r.name)} (held-out)</small></h3>${sampleTable(s.rows, false)}`,
            ]),
        ...(ro === null
          ? []
          : [
              `<h3>${esc(g.preset)} <small>rollouts of step ${ro.step}, ${esc(r.name)} (sampled, with every reward and the advantage)</small></h3>${sampleTable(ro.rows, true)}`,
            ]),
      ];
    }
    return [];
  });
  return `<section id="samples"><h2>Sample completions</h2>${blocks.length ? blocks.join("\n") : '<p class="empty">No samples logged yet.</p>'}</section>`;
}

/** One picture as inline SVG: a grey square per pixel (−1 black … +1 white). */
export function pictureSvg(img: SampleImage, cell = 6): string {
  const rects = img.pixels
    .map((p, k) => {
      const g = Math.round(255 * Math.max(0, Math.min(1, (p + 1) / 2)));
      return `<rect x="${(k % img.width) * cell}" y="${Math.floor(k / img.width) * cell}" width="${cell}" height="${cell}" fill="rgb(${g},${g},${g})"/>`;
    })
    .join("");
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${img.width * cell}" height="${img.height * cell}" shape-rendering="crispEdges">${rects}</svg>`;
}

function pictureRow(rows: readonly SampleRow[]): string {
  return rows
    .filter((r) => r.image !== undefined)
    .map(
      (r) =>
        `<figure class="pic">${pictureSvg(r.image as SampleImage)}<figcaption>${esc(r.prompt)}<br>${score(r.return)}</figcaption></figure>`,
    )
    .join("");
}

/** Generated pictures (digits_flow): the first evaluation's and the latest one's, per preset (its first run). */
function renderPictures(src: ReportSource): string {
  const blocks = groupByPreset(src.runs).flatMap((g) => {
    for (const r of g.runs) {
      const pics = r.samples.filter((s) => s.image !== undefined);
      if (pics.length === 0) continue;
      const steps = [...new Set(pics.map((s) => s.step))].sort((a, b) => a - b);
      const first = steps[0] as number;
      const last = steps.at(-1) as number;
      const at = (step: number) => pics.filter((s) => s.step === step).slice(0, 16);
      return [
        `<h3>${esc(g.preset)} <small>${esc(r.name)}: evaluation samples (deterministic sampler), caption = asked class and reward</small></h3>` +
          `<div class="pics"><div><b>before</b> (step ${first})<div class="picrow">${pictureRow(at(first))}</div></div>` +
          (last !== first
            ? `<div><b>after</b> (step ${last})<div class="picrow">${pictureRow(at(last))}</div></div>`
            : "") +
          "</div>",
      ];
    }
    return [];
  });
  return blocks.length ? `<section id="pictures"><h2>Generated pictures</h2>${blocks.join("\n")}</section>` : "";
}

const STYLE = `
:root { color-scheme: light; --fg:#1d232a; --muted:#5b6470; --line:#d9dee4; --bg:#f6f7f9; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
header, section { max-width: 1280px; margin: 0 auto; padding: 12px 20px; }
header { padding-top: 20px; }
h1 { font-size: 22px; margin: 0 0 8px; }
h2 { font-size: 18px; margin: 18px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
h3 { font-size: 14px; margin: 0 0 6px; }
h3 small { color: var(--muted); font-weight: normal; }
header div { color: var(--muted); }
header b { color: var(--fg); font-weight: 600; }
table { border-collapse: collapse; background: #fff; width: 100%; }
th, td { border: 1px solid var(--line); padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
#final-table td:first-child { white-space: nowrap; }
td.num { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
.mark { display: table; margin: 2px 0 0 auto; font-size: 11px; padding: 0 6px; border-radius: 8px; }
.table-wrap { overflow-x: auto; }
.mark.best { background: #fff2c2; color: #7a5a00; }
.mark.noise { background: #e3f1e3; color: #23632a; }
.mark.worse { background: #f6e1e1; color: #8a2424; }
.mark.open { background: #eceff2; color: var(--muted); }
.failed { color: #b42318; }
.note { color: var(--muted); font-size: 12px; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px; vertical-align: -1px; }
#legend { display: flex; flex-wrap: wrap; gap: 14px; margin: 4px 0 10px; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(600px, 1fr)); gap: 14px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; }
.pair > div { position: relative; height: 210px; }
pre { background: #fff; border: 1px solid var(--line); padding: 8px; overflow: auto; max-height: 420px; font-size: 12px; }
pre.error { color: #b42318; white-space: pre-wrap; margin: 4px 0; }
details { margin: 6px 0; }
summary { cursor: pointer; }
table.samples { margin-bottom: 14px; }
.picrow { display: flex; flex-wrap: wrap; gap: 6px; margin: 4px 0 12px; }
figure.pic { margin: 0; text-align: center; font-size: 11px; color: var(--muted); }
table.samples code { white-space: pre-wrap; word-break: break-all; }
td.ok { color: #23632a; } td.bad { color: #b42318; }
.empty { color: var(--muted); }
`;

/** The client-side script: draws every chart from the embedded data (Chart.js is a global here). */
const CLIENT = `
(function () {
  var state = { charts: 0, expected: 0, errors: [], done: false };
  window.cohortReport = state;
  var data = JSON.parse(document.getElementById("report-data").textContent);
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }
  function fmt(v, pct) {
    if (v === null || v === undefined) return "";
    if (pct) return (100 * v).toFixed(1) + "%";
    var a = Math.abs(v);
    return a !== 0 && (a >= 1000 || a < 1e-3) ? v.toExponential(2) : String(Number(v.toPrecision(3)));
  }
  function wallUnit(metric) {
    var max = 0;
    metric.series.forEach(function (s) { s.points.forEach(function (p) { if (p[1] > max) max = p[1]; }); });
    return max >= 7200 ? [3600, "h"] : max >= 120 ? [60, "min"] : [1, "s"];
  }
  function draw(canvas, metric, axis) {
    var unit = axis === "wall" ? wallUnit(metric) : [1, ""];
    var xi = axis === "wall" ? 1 : 0;
    var datasets = [];
    var xmax = 0;
    metric.series.forEach(function (s) { s.points.forEach(function (p) { if (p[xi] / unit[0] > xmax) xmax = p[xi] / unit[0]; }); });
    metric.series.forEach(function (s) {
      var pts = function (k) { return s.points.map(function (p) { return { x: p[xi] / unit[0], y: p[k] }; }); };
      var radius = s.points.length > 25 ? 0 : 2.5;
      datasets.push({ label: s.preset + " min", data: pts(4), borderWidth: 0, pointRadius: 0, fill: false, band: true, borderColor: "transparent" });
      datasets.push({ label: s.preset + " max", data: pts(5), borderWidth: 0, pointRadius: 0, fill: "-1", band: true, borderColor: "transparent", backgroundColor: alpha(s.color, 0.16) });
      datasets.push({ label: s.preset, data: pts(2), borderColor: s.color, backgroundColor: s.color, borderWidth: 2, pointRadius: radius, fill: false, clip: 6, series: s });
    });
    return new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        layout: { padding: { right: 6, top: 4 } },
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", min: 0, max: xmax > 0 ? xmax : undefined, ticks: { includeBounds: false }, title: { display: true, text: axis === "wall" ? "training wall time (" + unit[1] + ")" : "step" } },
          y: { type: "linear", beginAtZero: metric.percent, ticks: { callback: function (v) { return fmt(v, metric.percent); } } },
        },
        plugins: {
          legend: { display: false },
          title: { display: false },
          tooltip: {
            filter: function (item) { return !item.dataset.band; },
            callbacks: {
              title: function (items) {
                var s = items[0].dataset.series, p = s.points[items[0].dataIndex];
                return "step " + p[0] + " · " + p[1].toFixed(1) + " s";
              },
              label: function (item) {
                var p = item.dataset.series.points[item.dataIndex];
                var std = p[3] === null ? "" : " ± " + fmt(p[3], metric.percent);
                return item.dataset.label + ": " + fmt(p[2], metric.percent) + std + "  [" + fmt(p[4], metric.percent) + ", " + fmt(p[5], metric.percent) + "]  n=" + p[6];
              },
            },
          },
        },
      },
    });
  }
  try {
    var canvases = document.querySelectorAll("canvas[data-metric]");
    state.expected = canvases.length;
    canvases.forEach(function (c) {
      var metric = data.metrics[Number(c.getAttribute("data-metric"))];
      try {
        draw(c, metric, c.getAttribute("data-axis"));
        state.charts++;
      } catch (e) {
        state.errors.push(String(e));
        console.error("chart " + metric.key + ": " + e);
      }
    });
  } catch (e) {
    state.errors.push(String(e));
    console.error(e);
  }
  state.done = true;
})();
`;

function renderCharts(metrics: ChartMetric[], colors: Map<string, string>): string {
  if (metrics.length === 0)
    return '<section id="charts"><h2>Curves</h2><p class="empty">No metrics logged yet.</p></section>';
  const legend = [...colors.entries()]
    .map(([p, c]) => `<span><span class="swatch" style="background:${c}"></span>${esc(p)}</span>`)
    .join("");
  const cards = metrics
    .map(
      (
        m,
        i,
      ) => `<div class="card" id="chart-${esc(m.key.replace(/[^A-Za-z0-9_-]/g, "_"))}"><h3>${esc(m.title)} <small>${esc(m.key)}</small></h3>
<div class="pair"><div><canvas data-metric="${i}" data-axis="step" aria-label="${esc(m.title)} against step"></canvas></div><div><canvas data-metric="${i}" data-axis="wall" aria-label="${esc(m.title)} against wall time"></canvas></div></div></div>`,
    )
    .join("\n");
  return `<section id="charts"><h2>Curves</h2><div id="legend">${legend}</div>
<p class="note">Line: mean over seeds at each step; band: min–max over seeds. Left: against the step; right: against
cumulative training wall time (Σ time/step_s; evaluation excluded), averaged over seeds.</p>
<div class="grid">${cards}</div></section>`;
}

/** The whole report page. */
export function renderHtml(src: ReportSource, opts: RenderOptions = {}): string {
  const now = opts.now ?? new Date();
  const colors = new Map<string, string>();
  groupByPreset(src.runs).forEach((g, i) => {
    colors.set(g.preset, PALETTE[i % PALETTE.length] as string);
  });
  const specs = presentMetrics(src.runs);
  const metrics = chartData(src, specs, colors).filter((m) => m.series.length > 0);
  const refresh =
    opts.refreshS !== undefined
      ? `<meta http-equiv="refresh" content="${Math.max(1, Math.round(opts.refreshS))}">`
      : "";
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${refresh}<title>Cohort report — ${esc(src.title)}</title>
<style>${STYLE}</style>
</head>
<body>
${renderHeader(src, now)}
<section id="results"><h2>Final results</h2>
${renderTable(src, colors)}
</section>
${renderFailures(src)}
${renderCharts(metrics, colors)}
${renderPictures(src)}
${renderSamples(src)}
${renderConfigs(src)}
<script>${chartJsSource()}</script>
<script type="application/json" id="report-data">${scriptJson({ metrics })}</script>
<script>${CLIENT}</script>
</body>
</html>
`;
}
