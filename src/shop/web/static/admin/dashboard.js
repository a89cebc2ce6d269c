// The usage dashboard: polls the figures as JSON and redraws the uPlot charts, the cards and the tables.
// No inline script (the CSP forbids it): the page hands over its URLs in data attributes.
const root = document.getElementById("usage");
const params = new URLSearchParams(location.search);
const pollMs = 1000 * Number(root.dataset.pollSeconds || 5);
const live = document.querySelector("[data-live]");
const charts = {};

const fixed = (value, digits) => (value === null || value === undefined ? "—" : Number(value).toFixed(digits));
const duration = (seconds) => {
  const s = Math.floor(seconds), d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${h}h` : h ? `${h}h ${m}m` : m ? `${m}m ${s % 60}s` : `${s % 60}s`;
};

function cell(text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

function fill(name, rows, toCells, emptyText, columns) {
  const body = document.querySelector(`[data-rows="${name}"]`);
  if (!body) return;
  const fresh = rows.map((row) => {
    const tr = document.createElement("tr");
    tr.append(...toCells(row));
    return tr;
  });
  if (!fresh.length) {
    const tr = document.createElement("tr");
    tr.className = "empty";
    const td = cell(emptyText, "muted");
    td.colSpan = columns;
    tr.append(td);
    fresh.push(tr);
  }
  body.replaceChildren(...fresh);
}

function routeCells(r) {
  const link = document.createElement("a");
  link.href = `?range=${encodeURIComponent(params.get("range") || "")}&route=${encodeURIComponent(r.route)}`;
  link.textContent = r.route;
  const first = cell("", "path");
  first.append(link);
  return [first, cell(String(r.requests), "num"), cell(fixed(r.per_second, 3), "num"),
    cell(fixed(r.error_rate * 100, 1), "num"), cell(fixed(r.mean_ms, 1), "num"), cell(fixed(r.p95, 1), "num"),
    cell(fixed(r.p99, 1), "num")];
}

function statusCells(s) {
  const link = document.createElement("a");
  link.href = `/admin/requests?status=${s.status}`;
  link.textContent = String(s.status);
  const first = cell("", `status-${Math.floor(s.status / 100)}`);
  first.append(link);
  return [first, cell(String(s.count), "num")];
}

function workerCells(w) {
  return [cell(String(w.pid)), cell(w.pool), cell(fixed(w.cpu_percent, 1), "num"), cell(fixed(w.rss_mb, 1), "num"),
    cell(String(w.requests), "num"), cell(String(w.in_flight), "num"), cell(duration(w.uptime_seconds), "num")];
}

const CHARTS = {
  traffic: { series: [{ label: "req/s", stroke: "#1d4ed8", fill: "rgba(29,78,216,.08)" }], columns: ["per_second"] },
  latency: {
    // quiet minutes leave gaps, so a busy minute between two quiet ones is a lone point: draw the points
    series: [{ label: "p50", stroke: "#15803d", points: { show: true, size: 5 } },
      { label: "p95", stroke: "#b45309", points: { show: true, size: 5 } },
      { label: "p99", stroke: "#b91c1c", points: { show: true, size: 5 } }],
    columns: ["p50", "p95", "p99"],
  },
  errors: {
    series: [{ label: "5xx %", stroke: "#b91c1c" }, { label: "4xx %", stroke: "#b45309" }],
    columns: ["error_rate", "client_error_rate"],
  },
};

function draw(name, figures) {
  const el = document.querySelector(`[data-chart="${name}"]`);
  if (!el || typeof uPlot === "undefined") return;
  const spec = CHARTS[name];
  const data = [figures.series.t, ...spec.columns.map((c) => figures.series[c])];
  // the figures the chart holds, readable by people with screen readers and by the browser tests
  el.dataset.points = String(figures.series.t.length);
  el.dataset.sum = spec.columns.map((c) => figures.series[c].reduce((a, v) => a + (v || 0), 0).toFixed(4)).join(",");
  if (charts[name]) {
    charts[name].setData(data);
    return;
  }
  const opts = {
    width: Math.max(280, el.clientWidth), height: 220,
    series: [{}, ...spec.series.map((s) => ({ ...s, width: 2, spanGaps: false }))],
    axes: [{}, { size: 60 }], scales: { x: { time: true } }, cursor: { drag: { x: false, y: false } },
  };
  charts[name] = new uPlot(opts, data, el);
  el.uplot = charts[name];
}

function show(figures) {
  const t = figures.totals;
  const set = (name, text) => {
    const el = document.querySelector(`[data-figure="${name}"]`);
    if (el) el.textContent = text;
  };
  set("requests", String(t.requests));
  set("per_second", fixed(t.per_second, 3));
  set("p50", fixed(t.p50, 1));
  set("p95", fixed(t.p95, 1));
  set("p99", fixed(t.p99, 1));
  set("error_rate", `${fixed(t.error_rate * 100, 2)} %`);
  set("sample", (t.sample_capped ? `Latency from the newest ${t.sampled} requests of the period (counts are exact).`
    : `Latency over all ${t.sampled} requests of the period.`) + ` Buckets of ${figures.bucket_seconds} s, UTC.`);
  for (const name of Object.keys(CHARTS)) draw(name, figures);
  fill("routes", figures.routes, routeCells, "No requests in this period.", 7);
  fill("slowest", figures.slowest, routeCells, "No requests in this period.", 7);
  fill("statuses", figures.statuses, statusCells, "No requests in this period.", 2);
}

async function fetchJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

async function poll() {
  const query = new URLSearchParams();
  if (params.get("range")) query.set("range", params.get("range"));
  if (params.get("route")) query.set("route", params.get("route"));
  try {
    const [usage, workers] = await Promise.all([
      fetchJson(`${root.dataset.usageUrl}?${query}`), fetchJson(root.dataset.workersUrl)]);
    show(usage);
    fill("workers", workers.workers, workerCells, "No worker has reported in the last few seconds.", 7);
    live.dataset.state = "ok";
    live.textContent = `Live: updated ${new Date().toLocaleTimeString()}`;
    root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
  } catch (error) {
    live.dataset.state = "error";
    live.textContent = `Live updates paused: ${error.message}`;
  }
  setTimeout(poll, pollMs);
}

window.addEventListener("resize", () => {
  for (const [name, chart] of Object.entries(charts)) {
    const el = document.querySelector(`[data-chart="${name}"]`);
    chart.setSize({ width: Math.max(280, el.clientWidth), height: 220 });
  }
});

poll();
