/* plotsm report: the map, the date slider, the series of a parcel, the tables. No library, nothing fetched. */
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("plotsm-data").textContent);

  function decode(text, Type) {
    const bin = atob(text);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const k in attrs || {}) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  // ---------------------------------------------------------------- data
  const ids = D.parcel_ids, nP = ids.length, dates = D.dates, nD = dates.length, statuses = D.statuses;
  const coords = decode(D.outlines.coords, Int32Array);
  const ringStart = decode(D.outlines.ring_start, Int32Array);
  const parcelRing = decode(D.outlines.parcel_ring, Int32Array);
  const label = decode(D.outlines.label, Float32Array);
  const MV = decode(D.values.mv, Uint16Array), ST = decode(D.values.status, Uint8Array);
  const NDVI = decode(D.values.ndvi, Uint8Array), VV = decode(D.values.vv, Int16Array);
  const mvAt = (d, p) => { const v = MV[d * nP + p]; return v === 65535 ? null : v / 10; };
  const stAt = (d, p) => { const v = ST[d * nP + p]; return v === 255 ? null : (statuses[v] || "unknown"); };
  const ndviAt = (d, p) => { const v = NDVI[d * nP + p]; return v === 255 ? null : v / 100 - 1; };
  const vvAt = (d, p) => { const v = VV[d * nP + p]; return v === -32768 ? null : v / 100; };
  // the posterior standard deviation of an estimate (vol.%) and the inversion that made it (single, temporal)
  const STD = decode(D.values.std, Uint8Array), METHOD = decode(D.values.method, Uint8Array), methods = D.methods;
  const stdAt = (d, p) => { const v = STD[d * nP + p]; return v === 255 ? null : v / 10; };
  const methodAt = (d, p) => { const v = METHOD[d * nP + p]; return v === 255 ? null : (methods[v] || "unknown"); };
  // the posterior's 68 % credible interval [lo, hi] (vol.%), shipped as distances (0.1 vol.%) below and above the
  // moisture (255: none, as in rows of older versions, or no interval array at all)
  const LO68 = D.values.lo68 ? decode(D.values.lo68, Uint8Array) : null, HI68 = D.values.hi68 ? decode(D.values.hi68, Uint8Array) : null;
  function interval68(d, p) {
    if (!LO68 || !HI68) return null;
    const i = d * nP + p, mv = MV[i], below = LO68[i], above = HI68[i];
    return mv === 65535 || below === 255 || above === 255 ? null : [(mv - below) / 10, (mv + above) / 10];
  }
  // "21.5 vol.% (68 %: 16.0–27.1) (temporal)", or "21.5 ± 6.9 vol.% (temporal)" without an interval: the value,
  // its uncertainty, the inversion
  function estimate(d, p) {
    const mv = mvAt(d, p), ci = interval68(d, p), sd = stdAt(d, p), m = methodAt(d, p);
    const spread = ci ? ` vol.% (68 %: ${ci[0].toFixed(1)}–${ci[1].toFixed(1)})` : `${sd === null ? "" : " ± " + sd.toFixed(1)} vol.%`;
    return `${mv.toFixed(1)}${spread}${m ? " (" + m + ")" : ""}`;
  }
  // the span of the bar and band at an estimate: its 68 % credible interval, else ± 1 posterior std, else none
  function spanAt(d, p) {
    const ci = interval68(d, p); if (ci) return ci;
    const mv = mvAt(d, p), sd = stdAt(d, p);
    return mv === null || sd === null ? null : [mv - sd, mv + sd];
  }

  const paths = new Array(nP), boxes = new Float64Array(nP * 4);
  for (let p = 0; p < nP; p++) {
    const path = new Path2D();
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (let r = parcelRing[p]; r < parcelRing[p + 1]; r++) {
      for (let v = ringStart[r]; v < ringStart[r + 1]; v++) {
        const x = coords[2 * v], y = coords[2 * v + 1];
        if (v === ringStart[r]) path.moveTo(x, y); else path.lineTo(x, y);
        if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y;
      }
      path.closePath();
    }
    paths[p] = path;
    boxes.set([x0, y0, x1, y1], 4 * p);
  }
  const W = Math.max(D.outlines.width, 1), H = Math.max(D.outlines.height, 1);
  const GRID = 64, cellW = W / GRID, cellH = H / GRID, cells = Array.from({ length: GRID * GRID }, () => []);
  for (let p = 0; p < nP; p++) {
    if (!isFinite(boxes[4 * p])) continue;
    const c0 = Math.max(0, Math.floor(boxes[4 * p] / cellW)), c1 = Math.min(GRID - 1, Math.floor(boxes[4 * p + 2] / cellW));
    const r0 = Math.max(0, Math.floor(boxes[4 * p + 1] / cellH)), r1 = Math.min(GRID - 1, Math.floor(boxes[4 * p + 3] / cellH));
    for (let r = r0; r <= r1; r++) for (let c = c0; c <= c1; c++) cells[r * GRID + c].push(p);
  }

  // ---------------------------------------------------------------- colours
  // ColorBrewer YlGnBu (9 classes) over 0–45 vol.%, the scale of `plotsm map`, so that dates and files compare
  const BREWER = ["#ffffd9", "#edf8b1", "#c7e9b4", "#7fcdbb", "#41b6c4", "#1d91c0", "#225ea8", "#253494", "#081d58"];
  const MV_MAX = 45;
  const STOPS = BREWER.map((h, i) => [i * MV_MAX / (BREWER.length - 1),
    [parseInt(h.slice(1, 3), 16), parseInt(h.slice(3, 5), 16), parseInt(h.slice(5, 7), 16)]]);
  function colour(mv) {
    const v = Math.max(0, Math.min(MV_MAX, mv));
    for (let i = 1; i < STOPS.length; i++) {
      if (v <= STOPS[i][0]) {
        const [a, ca] = STOPS[i - 1], [b, cb] = STOPS[i], t = (v - a) / (b - a);
        return `rgb(${ca.map((c, k) => Math.round(c + t * (cb[k] - c))).join(",")})`;
      }
    }
    return "rgb(8,29,88)";
  }
  const STATUS_COLOUR = { ndvi_above_max: "#4d9221", slope_above_max: "#762a83", too_few_pixels: "#e08214",
                          no_data: "#8a8a8a", outside_domain: "#d73027", unknown: "#000000" };
  const canvas = document.getElementById("map"), ctx = canvas.getContext("2d");
  function hatch(col, target) {
    const c = document.createElement("canvas"); c.width = c.height = 8;
    const g = c.getContext("2d");
    g.fillStyle = "#ffffff"; g.fillRect(0, 0, 8, 8);
    g.strokeStyle = col; g.lineWidth = 2; g.beginPath(); g.moveTo(-2, 10); g.lineTo(10, -2); g.stroke();
    return (target || ctx).createPattern(c, "repeat");
  }
  const PATTERN = {};
  for (const s in STATUS_COLOUR) PATTERN[s] = hatch(STATUS_COLOUR[s]);

  // ---------------------------------------------------------------- map
  let current = nD - 1, selected = -1, hover = -1;
  const view = { s: 1, tx: 0, ty: 0 };
  let dpr = window.devicePixelRatio || 1;
  // the view fits the parcels with an estimate on some date (a stray parcel far away does not shrink the map;
  // zoom out to see it), or all parcels when none has one
  const ext = [Infinity, Infinity, -Infinity, -Infinity];
  for (let p = 0; p < nP; p++) {
    let any = false;
    for (let d = 0; d < nD && !any; d++) any = ST[d * nP + p] === 0;
    if (!any || !isFinite(boxes[4 * p])) continue;
    ext[0] = Math.min(ext[0], boxes[4 * p]); ext[1] = Math.min(ext[1], boxes[4 * p + 1]);
    ext[2] = Math.max(ext[2], boxes[4 * p + 2]); ext[3] = Math.max(ext[3], boxes[4 * p + 3]);
  }
  if (!isFinite(ext[0])) { ext[0] = 0; ext[1] = 0; ext[2] = W; ext[3] = H; }
  function fit() {
    const w = canvas.clientWidth, h = canvas.clientHeight;
    const ew = Math.max(ext[2] - ext[0], 1), eh = Math.max(ext[3] - ext[1], 1);
    view.s = 0.96 * Math.min(w / ew, h / eh);
    view.tx = (w - view.s * ew) / 2 - view.s * ext[0]; view.ty = (h - view.s * eh) / 2 - view.s * ext[1];
  }
  function resize() {
    dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(canvas.clientWidth * dpr); canvas.height = Math.round(canvas.clientHeight * dpr);
  }
  function setTransform() { ctx.setTransform(dpr * view.s, 0, 0, dpr * view.s, dpr * view.tx, dpr * view.ty); }
  function draw() {
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = "#eef1f3"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    setTransform();
    const unscale = new DOMMatrix().scale(1 / (dpr * view.s));
    for (const s in PATTERN) if (PATTERN[s] && PATTERN[s].setTransform) PATTERN[s].setTransform(unscale);
    ctx.lineWidth = 0.6 / view.s; ctx.strokeStyle = "rgba(40,40,40,0.55)";
    for (let p = 0; p < nP; p++) {
      const st = stAt(current, p);
      if (st === "ok") { const mv = mvAt(current, p); ctx.fillStyle = mv === null ? "#e4e7ea" : colour(mv); }
      else if (st === null) ctx.fillStyle = "#e4e7ea";
      else ctx.fillStyle = PATTERN[st] || "#000";
      ctx.fill(paths[p], "evenodd");
      ctx.stroke(paths[p]);
    }
    for (const [p, col, w] of [[hover, "#000", 1.5], [selected, "#e6007e", 2.5]]) {
      if (p < 0) continue;
      ctx.lineWidth = w / view.s; ctx.strokeStyle = col; ctx.stroke(paths[p]);
    }
  }
  function parcelAt(cx, cy) {  // canvas CSS pixels → parcel index or -1
    const wx = (cx - view.tx) / view.s, wy = (cy - view.ty) / view.s;
    const c = Math.floor(wx / cellW), r = Math.floor(wy / cellH);
    if (c < 0 || r < 0 || c >= GRID || r >= GRID) return -1;
    setTransform();
    for (const p of cells[r * GRID + c]) if (ctx.isPointInPath(paths[p], cx * dpr, cy * dpr, "evenodd")) return p;
    return -1;
  }
  const tip = document.getElementById("tooltip");
  function describe(p, d) {
    const st = stAt(d, p), mv = mvAt(d, p);
    if (st === null) return `${ids[p]}: not in this acquisition`;
    return st === "ok" && mv !== null ? `${ids[p]}: ${estimate(d, p)}` : `${ids[p]}: no estimate (${st.replace(/_/g, " ")})`;
  }
  let drag = null;
  canvas.addEventListener("mousemove", (ev) => {
    const r = canvas.getBoundingClientRect(), cx = ev.clientX - r.left, cy = ev.clientY - r.top;
    if (drag) {
      view.tx = drag.tx + cx - drag.x; view.ty = drag.ty + cy - drag.y; drag.moved = true; draw(); return;
    }
    const p = parcelAt(cx, cy);
    if (p !== hover) { hover = p; draw(); }
    if (p < 0) { tip.style.display = "none"; return; }
    tip.textContent = describe(p, current);
    tip.style.display = "block"; tip.style.left = `${cx + 14}px`; tip.style.top = `${cy + 10}px`;
  });
  canvas.addEventListener("mouseleave", () => { hover = -1; tip.style.display = "none"; draw(); });
  canvas.addEventListener("mousedown", (ev) => {
    const r = canvas.getBoundingClientRect();
    drag = { x: ev.clientX - r.left, y: ev.clientY - r.top, tx: view.tx, ty: view.ty, moved: false };
  });
  window.addEventListener("mouseup", (ev) => {
    if (!drag) return;
    const wasDrag = drag.moved; drag = null;
    if (wasDrag) return;
    const r = canvas.getBoundingClientRect();
    const p = parcelAt(ev.clientX - r.left, ev.clientY - r.top);
    if (p >= 0 || ev.target === canvas) select(p);
  });
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    const r = canvas.getBoundingClientRect(), cx = ev.clientX - r.left, cy = ev.clientY - r.top;
    const k = Math.exp(-ev.deltaY * 0.0015);
    view.tx = cx - (cx - view.tx) * k; view.ty = cy - (cy - view.ty) * k; view.s *= k; draw();
  }, { passive: false });
  canvas.addEventListener("dblclick", () => { fit(); draw(); });

  // ---------------------------------------------------------------- legend, slider, per-date table
  function legend() {
    const box = document.getElementById("legend"); box.textContent = "";
    const bar = el("span", { class: "bar" }), c = el("canvas", { width: 200, height: 12 });
    const g = c.getContext("2d");
    for (let x = 0; x < 200; x++) { g.fillStyle = colour(x * MV_MAX / 200); g.fillRect(x, 0, 1, 12); }
    bar.append(el("span", {}, "0"), c, el("span", {}, `≥ ${MV_MAX} vol.%`));
    box.append(bar);
    const counts = dates[current].counts;
    for (const s of statuses) {
      if (s === "ok") continue;
      const sw = el("canvas", { width: 14, height: 14, class: "swatch" });
      const g2 = sw.getContext("2d"); g2.fillStyle = hatch(STATUS_COLOUR[s], g2); g2.fillRect(0, 0, 14, 14);
      const item = el("span", {}); item.append(sw, document.createTextNode(`${s.replace(/_/g, " ")} (${counts[s] || 0})`));
      box.append(item);
    }
    const none = el("span", {}); none.append(el("span", { class: "swatch", style: "background:#e4e7ea" }),
      document.createTextNode(`not in this acquisition (${counts.no_row || 0})`));
    box.append(none);
  }
  const slider = document.getElementById("slider"), dateLabel = document.getElementById("date-label");
  slider.max = String(Math.max(nD - 1, 0)); slider.value = String(current);
  slider.addEventListener("input", () => setDate(Number(slider.value)));
  function fmt(v, n) { return v === null || v === undefined ? "–" : Number(v).toFixed(n); }
  function dateTable() {
    const t = document.getElementById("dates-table"); t.textContent = "";
    const head = el("tr");
    for (const h of ["date (UTC)", "orbit", "a priori", "network", "ok", ...statuses.slice(1).map(s => s.replace(/_/g, " ")),
      "Q1", "median", "Q3", "median ±", "method"]) head.append(el("th", {}, h));
    t.append(head);
    dates.forEach((d, i) => {
      const tr = el("tr", i === current ? { class: "current" } : {});
      tr.append(el("td", {}, d.datetime_utc), el("td", {}, d.orbit || "–"), el("td", { title: d.apriori_reason || "" }, d.apriori || "–"),
        el("td", {}, d.network || "–"));
      for (const s of statuses) tr.append(el("td", {}, d.counts[s]));
      for (const q of d.quartiles) tr.append(el("td", {}, fmt(q, 1)));
      const used = methods.filter(m => (d.methods || {})[m] > 0);
      tr.append(el("td", { title: "median posterior standard deviation of the ok estimates (vol.%)" }, fmt(d.std_median, 1)),
        el("td", { title: used.map(m => `${m}: ${d.methods[m]}`).join(", ") }, used.join(" + ") || "–"));
      tr.style.cursor = "pointer"; tr.addEventListener("click", () => setDate(i));
      t.append(tr);
    });
  }
  function setDate(i) {
    current = Math.max(0, Math.min(nD - 1, i)); slider.value = String(current);
    const d = dates[current];
    dateLabel.textContent = `${d.datetime_utc} UTC · ${d.id} · a priori ${d.apriori || "none"} · ${d.counts.ok} ok, median ${fmt(d.quartiles[1], 1)} vol.%`;
    draw(); legend(); dateTable(); series();
  }

  // ---------------------------------------------------------------- the series of a parcel
  const times = dates.map(d => Date.parse(d.datetime_utc.replace(" ", "T") + ":00Z"));
  function select(p) { selected = p; draw(); series(); }
  function series() {
    const box = document.getElementById("series"); box.textContent = "";
    const title = document.getElementById("series-title");
    if (selected < 0) { title.textContent = "Series of a parcel"; box.append(el("div", { class: "empty" }, "Click a parcel on the map.")); return; }
    const p = selected;
    title.textContent = `Series of parcel ${ids[p]}`;
    const Wd = 640, L = 48, R = 16, panels = [["moisture (vol.%)", 170], ["NDVI", 90], ["σ⁰ VV (dB)", 90]];
    const Ht = panels.reduce((a, q) => a + q[1] + 26, 0) + 24;
    const s = svg("svg", { viewBox: `0 0 ${Wd} ${Ht}`, role: "img", "aria-label": `series of ${ids[p]}` });
    let t0 = Math.min(...times), t1 = Math.max(...times);
    const rain = D.rain;
    if (rain && rain.days.length) { t0 = Math.min(t0, Date.parse(rain.days[0] + "T00:00Z")); }
    if (t1 - t0 < 864e5) { t0 -= 432e5; t1 += 432e5; }
    const pad = (t1 - t0) * 0.03, X = t => L + (t - t0 + pad) / (t1 - t0 + 2 * pad) * (Wd - L - R);
    let y = 8;
    panels.forEach(([name, h], k) => {
      const top = y, bottom = y + h;
      s.append(svg("rect", { x: L, y: top, width: Wd - L - R, height: h, fill: "#fafbfc", stroke: "#d5dbe0" }));
      s.append(svg("text", { x: L + 4, y: top + 12, "font-size": 11, fill: "#5f6b73" }, name));
      let vals, lo, hi;
      if (k === 0) { vals = dates.map((_, d) => mvAt(d, p)); lo = 0; hi = 50; }
      else if (k === 1) { vals = dates.map((_, d) => ndviAt(d, p)); lo = 0; hi = 1; }
      else {
        vals = dates.map((_, d) => vvAt(d, p));
        const f = vals.filter(v => v !== null); lo = f.length ? Math.floor(Math.min(...f) - 1) : -25; hi = f.length ? Math.ceil(Math.max(...f) + 1) : -5;
      }
      const Y = v => bottom - (v - lo) / (hi - lo) * h;
      for (const tick of [lo, (lo + hi) / 2, hi]) {
        s.append(svg("text", { x: L - 4, y: Y(tick) + 4, "font-size": 10, "text-anchor": "end", fill: "#5f6b73" }, Number(tick.toFixed(2))));
      }
      if (k === 0) {
        dates.forEach((d, i) => {  // a-priori state as a band behind each date
          if (d.apriori === "dry" || d.apriori === "wet") {
            s.append(svg("rect", { x: X(times[i]) - 5, y: top, width: 10, height: h, fill: d.apriori === "dry" ? "#f3e3c3" : "#d6e8f7" }));
          }
        });
        if (rain && rain.days.length) {
          const mmMax = Math.max(5, ...rain.mm.filter(v => v !== null));
          rain.days.forEach((day, i) => {
            const v = rain.mm[i]; if (!v) return;
            const t = Date.parse(day + "T12:00Z"), bh = v / mmMax * h * 0.45;
            const bar = svg("rect", { x: X(t) - 1.5, y: top, width: 3, height: bh, fill: "#6baed6" });
            bar.append(svg("title", {}, `${day}: ${v} mm`));
            s.append(bar);
          });
          s.append(svg("text", { x: Wd - R - 4, y: top + 12, "font-size": 10, "text-anchor": "end", fill: "#3182bd" }, `rain (bars, max ${mmMax} mm/day)`));
        }
      }
      const clampY = v => Y(Math.max(lo, Math.min(hi, v)));
      if (k === 0) {  // 68 % credible interval (± 1 posterior std without one): a band through the estimates, a bar at each
        const band = [];
        vals.forEach((v, i) => { const span = spanAt(i, p); if (v !== null && span !== null && stAt(i, p) === "ok") band.push([X(times[i]), span[0], span[1]]); });
        if (band.length > 1) {
          const edge = band.map(([x, , top]) => `${x},${clampY(top)}`).concat(band.slice().reverse().map(([x, low]) => `${x},${clampY(low)}`));
          s.append(svg("polygon", { points: edge.join(" "), fill: "#225ea8", "fill-opacity": 0.14, stroke: "none", class: "band" }));
        }
        band.forEach(([x, low, top]) => s.append(svg("line", { x1: x, x2: x, y1: clampY(top), y2: clampY(low), stroke: "#225ea8",
          "stroke-width": 1.4, "stroke-opacity": 0.7, class: "errorbar" })));
      }
      const pts = [];
      vals.forEach((v, i) => { if (v !== null && (k > 0 || stAt(i, p) === "ok")) pts.push([X(times[i]), clampY(v)]); });
      if (pts.length > 1) s.append(svg("polyline", { points: pts.map(q => q.join(",")).join(" "), fill: "none", stroke: k === 0 ? "#225ea8" : "#666", "stroke-width": 1.2 }));
      vals.forEach((v, i) => {
        const st = stAt(i, p), x = X(times[i]);
        if (k === 0 && st !== "ok") {
          if (st === null) return;
          const m = svg("rect", { x: x - 4, y: bottom - 10, width: 8, height: 8, fill: STATUS_COLOUR[st] || "#000", class: "flag" });
          m.append(svg("title", {}, `${dates[i].datetime_utc}: ${st.replace(/_/g, " ")}`)); s.append(m); return;
        }
        if (v === null) return;
        const c = svg("circle", { cx: x, cy: Y(Math.max(lo, Math.min(hi, v))), r: k === 0 ? 4.5 : 3, fill: k === 0 ? colour(v) : "#666",
          stroke: "#222", "stroke-width": 0.8, class: k === 0 ? "mv" : "aux" });
        c.append(svg("title", {}, `${dates[i].datetime_utc}: ${k === 0 ? estimate(i, p) + ", " + st : v.toFixed(2)}`));
        s.append(c);
      });
      s.append(svg("line", { x1: X(times[current]), x2: X(times[current]), y1: top, y2: bottom, stroke: "#e6007e", "stroke-dasharray": "3 3" }));
      y = bottom + 26;
    });
    const nTicks = Math.min(6, nD);
    for (let i = 0; i < nTicks; i++) {
      const t = t0 + (t1 - t0) * (nTicks === 1 ? 0.5 : i / (nTicks - 1));
      s.append(svg("text", { x: X(t), y: Ht - 6, "font-size": 10, "text-anchor": "middle", fill: "#5f6b73" }, new Date(t).toISOString().slice(0, 10)));
    }
    box.append(s);
    const legendLine = el("div", { class: "muted" });
    legendLine.textContent = "Points: estimates (ok), with their 68 % credible interval (bars and shaded band, under the networks' training noise; ± 1 std where a row has no interval); squares: dates without an estimate, by status; bands: a-priori state (tan dry, blue wet).";
    box.append(legendLine);
  }

  // ---------------------------------------------------------------- run information
  function table(target, header, rows) {
    const t = el("table"), h = el("tr");
    header.forEach(x => h.append(el("th", {}, x))); t.append(h);
    rows.forEach(r => { const tr = el("tr"); r.forEach(x => tr.append(el("td", {}, x === null || x === undefined ? "–" : x))); t.append(tr); });
    document.getElementById(target).append(t);
  }
  table("networks", ["network", "used", "mv range", "RMSE (vol.%)", "bound", "RMSE / bound", "validation RMSE"],
    D.networks.map(n => [n.network, n.used ? "yes" : "no", n.mv_range ? n.mv_range.join("–") : null, fmt(n.rmse, 2), fmt(n.bound, 2), fmt(n.ratio, 3), fmt(n.validation_rmse, 2)]));
  const inputs = [];
  D.inputs.forEach(a => a.inputs.forEach(i => inputs.push([a.acquisition_id, i.role, (i.path || "").split(/[\\/]/).pop(), (i.sha256 || "").slice(0, 16), i.encoding || ""])));
  table("inputs", ["acquisition", "role", "file", "sha256 (first 16)", "read as"], inputs);
  document.getElementById("settings").textContent = JSON.stringify(D.settings, null, 1);
  table("runs", ["plotsm", "started (UTC)", "command"], D.runs.map(r => [r.version, r.started_utc, r.command]));
  if (D.validation && D.validation.length) {
    const cols = Object.keys(D.validation[0]);
    table("validation", cols, D.validation.map(r => cols.map(c => typeof r[c] === "number" ? Number(r[c].toFixed(3)) : r[c])));
    document.getElementById("validation-panel").hidden = false;
  }

  // ---------------------------------------------------------------- start, and what the tests drive
  resize(); fit(); setDate(current);
  window.addEventListener("resize", () => { resize(); fit(); draw(); });
  window.plotsmReport = {
    nDates: nD, nParcels: nP,
    setDate: (i) => setDate(i),
    dateIndex: () => current,
    select: (id) => select(ids.indexOf(String(id))),
    selected: () => (selected < 0 ? null : ids[selected]),
    parcelPoint: (id) => {  // a point inside parcel `id`, in page CSS pixels
      const p = ids.indexOf(String(id)); if (p < 0) return null;
      const r = canvas.getBoundingClientRect();
      return { x: r.left + view.tx + view.s * label[2 * p], y: r.top + view.ty + view.s * label[2 * p + 1] };
    },
    ready: true,
  };
  document.body.setAttribute("data-ready", "1");
})();
