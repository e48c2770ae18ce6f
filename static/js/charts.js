/* Fleetwatch dashboard charts (uPlot, vendored in static/vendor/uplot).
 *
 * Every element with data-chart="sparkline" or data-chart="series" is drawn from the
 * JSON its data-source names (a <script type="application/json"> from json_script).
 * Series charts shade each anomalous window in the colour of its type, behind the
 * line, in uPlot's drawClear hook. After each draw the chart element carries:
 *   data-drawn="true"              the chart has been drawn at least once
 *   data-shaded-windows="<n>"      anomalous windows shaded in the visible range
 *   data-shaded-labels="spike ..." their types, in time order
 * (the browser tests read them). Times are shown in UTC.
 */
(function () {
  "use strict";

  var FILL = {
    spike: "rgba(220, 38, 38, 0.16)",
    trend: "rgba(217, 119, 6, 0.18)",
    seasonal: "rgba(124, 58, 237, 0.16)"
  };
  var EDGE = {
    spike: "rgba(220, 38, 38, 0.75)",
    trend: "rgba(217, 119, 6, 0.75)",
    seasonal: "rgba(124, 58, 237, 0.75)"
  };
  var LINE = "#2563eb";
  var PALETTE = [LINE, "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be123c", "#4d7c0f", "#6b7280"];

  function pad(n) { return n < 10 ? "0" + n : String(n); }

  function formatTime(ts) {
    var d = new Date(ts * 1000);
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate()) +
      " " + pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
  }

  function formatValue(v, unit) {
    if (v == null || isNaN(v)) { return "–"; }
    var abs = Math.abs(v), text;
    if (abs >= 1e9) { text = (v / 1e9).toFixed(2) + " G"; }
    else if (abs >= 1e6) { text = (v / 1e6).toFixed(2) + " M"; }
    else if (abs >= 1e4) { text = (v / 1e3).toFixed(1) + " k"; }
    else { text = v.toFixed(abs >= 100 ? 1 : 2); }
    return unit ? text + " " + unit : text;
  }

  /* Axis labels in UTC, 24-hour: "HH:MM", with the date at midnight and on the first tick. */
  function timeTicks(u, splits, axisIdx, space, incr) {
    return splits.map(function (ts, i) {
      var d = new Date(ts * 1000);
      var day = pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
      if (incr >= 86400) { return day; }
      var hm = pad(d.getUTCHours()) + ":" + pad(d.getUTCMinutes());
      return i === 0 || hm === "00:00" ? day + " " + hm : hm;
    });
  }

  function utcDate(ts) { return uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"); }

  function readJSON(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function visible(windows, min, max) {
    return windows.filter(function (w) { return w.end > min && w.start < max; });
  }

  /* Shade anomaly windows behind the series and record what was drawn. */
  function shadingPlugin(windows, el) {
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx, box = u.bbox;
          var min = u.scales.x.min, max = u.scales.x.max;
          var shown = visible(windows, min, max);
          ctx.save();
          shown.forEach(function (w) {
            var x0 = u.valToPos(Math.max(w.start, min), "x", true);
            var x1 = u.valToPos(Math.min(w.end, max), "x", true);
            var width = Math.max(x1 - x0, 3 * (window.devicePixelRatio || 1));
            ctx.fillStyle = FILL[w.label] || FILL.spike;
            ctx.fillRect(x0, box.top, width, box.height);
            ctx.fillStyle = EDGE[w.label] || EDGE.spike;
            ctx.fillRect(x0, box.top, Math.max(1, window.devicePixelRatio || 1), box.height);
          });
          ctx.restore();
          el.dataset.shadedWindows = String(shown.length);
          el.dataset.shadedLabels = shown.map(function (w) { return w.label; }).join(" ");
        }],
        draw: [function () { el.dataset.drawn = "true"; }]
      }
    };
  }

  /* A small box next to the cursor: time, value, and the anomaly window under it. */
  function tooltipPlugin(unit, windows) {
    var tip;
    return {
      hooks: {
        init: [function (u) {
          tip = document.createElement("div");
          tip.className = "chart-tooltip";
          tip.hidden = true;
          u.over.appendChild(tip);
          u.over.addEventListener("mouseleave", function () { tip.hidden = true; });
        }],
        setCursor: [function (u) {
          var idx = u.cursor.idx;
          if (idx == null || u.data[1][idx] == null) { tip.hidden = true; return; }
          var ts = u.data[0][idx];
          var hit = windows.filter(function (w) { return ts >= w.start && ts < w.end; })[0];
          tip.textContent = formatTime(ts) + " UTC  ·  " + formatValue(u.data[1][idx], unit) +
            (hit ? "  ·  " + hit.label + " " + hit.score.toFixed(2) : "");
          tip.hidden = false;
          var left = u.valToPos(ts, "x"), top = u.valToPos(u.data[1][idx], "y");
          var flip = left > u.over.clientWidth - 220;
          tip.style.left = (flip ? left - 12 - tip.offsetWidth : left + 12) + "px";
          tip.style.top = Math.max(0, top - 28) + "px";
        }]
      }
    };
  }

  function keepWidth(u, el, height) {
    if (typeof ResizeObserver === "undefined") { return; }
    new ResizeObserver(function () {
      var width = el.clientWidth;
      if (width && Math.abs(width - u.width) > 2) { u.setSize({ width: width, height: height }); }
    }).observe(el);
  }

  // Several lines on one time axis (an incident's metric on its nodes): uPlot.join aligns them.
  function lineData(spec) {
    var lines = (spec.lines || []).filter(function (l) { return l.t.length; });
    if (lines.length > 1) { return uPlot.join(lines.map(function (l) { return [l.t, l.v]; })); }
    return null;
  }

  function seriesChart(el, all) {
    var spec = all.series[Number(el.dataset.index)];
    var joined = lineData(spec);
    var t = spec.t.length ? spec.t : [all.start, all.end];
    var v = spec.t.length ? spec.v : [null, null];
    var height = 220;
    var opts = {
      width: el.clientWidth || 600,
      height: height,
      tzDate: utcDate,
      legend: { show: false },
      cursor: { drag: { x: true, y: false }, points: { size: 6 } },
      scales: { x: { time: true, range: function () { return [all.start, all.end]; } } },
      axes: [
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, values: timeTicks },
        { stroke: "#475569", grid: { stroke: "#e2e8f0" }, size: 64,
          values: function (u, splits) { return splits.map(function (s) { return formatValue(s, ""); }); } }
      ],
      series: [
        { value: function (u, ts) { return ts == null ? "–" : formatTime(ts); } },
        { label: spec.metric, stroke: LINE, width: 1.5, spanGaps: false,
          value: function (u, val) { return formatValue(val, spec.unit); } }
      ],
      plugins: [shadingPlugin(spec.windows, el), tooltipPlugin(spec.unit, spec.windows)]
    };
    if (joined) {
      opts.series = [opts.series[0]].concat(spec.lines.filter(function (l) { return l.t.length; }).map(function (l, i) {
        return { label: l.label, stroke: PALETTE[i % PALETTE.length], width: 1.5, spanGaps: true,
          value: function (u, val) { return formatValue(val, spec.unit); } };
      }));
      el.dataset.lines = String(opts.series.length - 1);
    }
    var u = new uPlot(opts, joined || [t, v], el);
    keepWidth(u, el, height);
    return u;
  }

  function sparkline(el, data) {
    var height = 90;
    var t = data.t.length ? data.t : [0, 1];
    var v = data.t.length ? data.v : [null, null];
    var u = new uPlot({
      width: el.clientWidth || 320,
      height: height,
      tzDate: utcDate,
      legend: { show: false },
      cursor: { show: true, drag: { x: false, y: false } },
      scales: { y: { range: [0, 1] } },
      axes: [{ show: false }, { show: true, size: 32, ticks: { show: false }, grid: { stroke: "#eef2f7" },
        values: function (u, splits) { return splits.map(function (s) { return s.toFixed(1); }); } }],
      series: [{}, { stroke: "#dc2626", width: 1.5, fill: "rgba(220, 38, 38, 0.08)", points: { show: t.length < 30 } }],
      plugins: [tooltipPlugin("", []), { hooks: { draw: [function () { el.dataset.drawn = "true"; }] } }]
    }, [t, v], el);
    keepWidth(u, el, height);
    return u;
  }

  function drawAll() {
    var cache = {};
    function source(id) {
      if (!(id in cache)) { cache[id] = readJSON(id); }
      return cache[id];
    }
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var data = source(el.dataset.source);
      if (!data) { return; }
      if (el.dataset.chart === "series") { seriesChart(el, data); }
      else if (el.dataset.chart === "sparkline") { sparkline(el, data); }
    });
  }

  window.Fleetwatch = { drawAll: drawAll, formatTime: formatTime, formatValue: formatValue };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
