/*
 * itemvecd dashboard: small SVG line charts (loss per iteration, evaluate
 * metrics per k, the overview's time series). Our own ~250 lines instead of
 * a library: Debian's libjs-d3 is the 2016 v3 API and dygraphs draws on a
 * canvas, where the points are not in the DOM; here every point is an SVG
 * <circle class="pt"> with a <title> (a screen reader and the browser test
 * can read them), and the chart has a role="img" label and a data table.
 *
 *   IVChart.line({title, xLabel, yLabel, series: [{name, points: [[x, y]],
 *                 best}], dots, small, xFormat, yFormat, table}) -> <figure>
 *
 * A y of null leaves a gap. Runs in the page; no state between calls.
 */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  // Okabe-Ito: distinguishable with the common colour-vision deficiencies
  var PALETTE = ["#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000"];

  function svg(tag, attrs, parent) {
    var e = document.createElementNS(NS, tag);
    for (var k in attrs) if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // "Nice" ticks over [lo, hi]: steps of 1, 2 or 5 times a power of ten.
  function ticks(lo, hi, count) {
    if (!(hi > lo)) { hi = lo + 1; lo = lo - (lo === 0 ? 0 : 1); }
    var raw = (hi - lo) / Math.max(1, count);
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var step = [1, 2, 5, 10].map(function (m) { return m * p; })
      .find(function (s) { return s >= raw; });
    var out = [];
    for (var v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
      out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
    return out;
  }

  // Axis labels: short (1.5M, 171.2k, 0.25, 1e-4).
  function defaultFormat(v) {
    var a = Math.abs(v);
    var trim = function (x, d) { return String(parseFloat(x.toFixed(d))); };
    if (a >= 1e9) return trim(v / 1e9, 2) + "G";
    if (a >= 1e6) return trim(v / 1e6, 2) + "M";
    if (a >= 1e4) return trim(v / 1e3, 1) + "k";
    if (a !== 0 && a < 1e-3) return v.toExponential(0);
    return trim(v, 3);
  }

  function line(opts) {
    var small = !!opts.small;
    var W = opts.width || (small ? 320 : 560), H = opts.height || (small ? 120 : 260);
    var m = small ? {l: 44, r: 8, t: 8, b: 20} : {l: 58, r: 16, t: 12, b: 42};
    var xf = opts.xFormat || defaultFormat, yf = opts.yFormat || defaultFormat;
    var series = opts.series || [];
    var xs = [], ys = [];
    series.forEach(function (s) {
      s.points.forEach(function (p) {
        xs.push(p[0]);
        if (p[1] !== null && isFinite(p[1])) ys.push(p[1]);
      });
    });
    var fig = document.createElement("figure");
    fig.className = "chart" + (small ? " small" : "");
    var npts = series.reduce(function (n, s) {
      return n + s.points.filter(function (p) { return p[1] !== null; }).length;
    }, 0);
    var root = svg("svg", {viewBox: "0 0 " + W + " " + H, role: "img",
                           "aria-label": (opts.title || "chart") + ": " + describe(series, yf),
                           "data-points": npts});
    fig.appendChild(root);
    svg("title", {}, root).textContent = opts.title || "";
    if (!xs.length || !ys.length) {
      var t = svg("text", {x: W / 2, y: H / 2, "text-anchor": "middle", class: "empty"}, root);
      t.textContent = opts.empty || "no data yet";
      return finish(fig, opts, series, xf, yf);
    }
    var x0 = Math.min.apply(null, xs), x1 = Math.max.apply(null, xs);
    var y0 = Math.min.apply(null, ys), y1 = Math.max.apply(null, ys);
    if (opts.yZero !== false && y0 > 0 && y0 < (y1 - y0)) y0 = 0;
    if (opts.yMin !== undefined) y0 = Math.min(y0, opts.yMin);
    if (opts.yMax !== undefined) y1 = Math.max(y1, opts.yMax);
    var yt = ticks(y0, y1, small ? 3 : 5);
    y0 = Math.min(y0, yt[0]);
    y1 = Math.max(y1, yt[yt.length - 1]);
    if (y1 === y0) y1 = y0 + 1;
    if (x1 === x0) { x0 -= 1; x1 += 1; }
    var px = function (x) { return m.l + (x - x0) / (x1 - x0) * (W - m.l - m.r); };
    var py = function (y) { return H - m.b - (y - y0) / (y1 - y0) * (H - m.t - m.b); };

    var grid = svg("g", {class: "grid"}, root);
    yt.forEach(function (v) {
      svg("line", {x1: m.l, x2: W - m.r, y1: py(v), y2: py(v)}, grid);
      var l = svg("text", {x: m.l - 6, y: py(v) + 4, "text-anchor": "end", class: "tick"}, grid);
      l.textContent = yf(v);
    });
    var xt = opts.xTicks || (opts.xInteger ? ticks(x0, x1, small ? 3 : 6)
      .filter(function (v) { return Math.round(v) === v; }) : ticks(x0, x1, small ? 3 : 6));
    xt.forEach(function (v) {
      if (v < x0 || v > x1) return;
      var l = svg("text", {x: px(v), y: H - m.b + 14, "text-anchor": "middle", class: "tick"}, grid);
      l.textContent = xf(v);
    });
    svg("line", {x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "axis"}, root);
    svg("line", {x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: "axis"}, root);
    if (!small && opts.xLabel) {
      svg("text", {x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle", class: "label"},
          root).textContent = opts.xLabel;
    }
    if (!small && opts.yLabel) {
      svg("text", {x: 12, y: (m.t + H - m.b) / 2, "text-anchor": "middle", class: "label",
                   transform: "rotate(-90 12 " + (m.t + H - m.b) / 2 + ")"}, root)
        .textContent = opts.yLabel;
    }
    series.forEach(function (s, i) {
      var color = s.color || PALETTE[i % PALETTE.length];
      var g = svg("g", {class: "series" + (s.best ? " best" : ""), "data-series": s.name}, root);
      var d = "", pen = false;
      s.points.forEach(function (p) {
        if (p[1] === null || !isFinite(p[1])) { pen = false; return; }
        d += (pen ? "L" : "M") + px(p[0]).toFixed(1) + " " + py(p[1]).toFixed(1);
        pen = true;
      });
      svg("path", {d: d, stroke: color, fill: "none", class: "line"}, g);
      var valid = s.points.filter(function (p) { return p[1] !== null && isFinite(p[1]); });
      if (opts.dots === false && valid.length === 1) { // a lone sample: a path shows nothing
        svg("circle", {cx: px(valid[0][0]).toFixed(1), cy: py(valid[0][1]).toFixed(1), r: 2.5,
                       fill: color}, g);
      }
      if (opts.dots === false) return;
      s.points.forEach(function (p) {
        if (p[1] === null || !isFinite(p[1])) return;
        var c = svg("circle", {cx: px(p[0]).toFixed(1), cy: py(p[1]).toFixed(1),
                               r: s.best ? 4 : 3, fill: color, class: "pt"}, g);
        svg("title", {}, c).textContent = s.name + ": " + xf(p[0]) + " → " + yf(p[1]);
      });
    });
    return finish(fig, opts, series, xf, yf);
  }

  function describe(series, yf) {
    return series.map(function (s) {
      var pts = s.points.filter(function (p) { return p[1] !== null; });
      if (!pts.length) return s.name + ": no points";
      return s.name + (s.best ? " (best)" : "") + ": " + pts.length + " points, from " +
        yf(pts[0][1]) + " to " + yf(pts[pts.length - 1][1]);
    }).join("; ");
  }

  function finish(fig, opts, series, xf, yf) {
    if (series.length > 1 || series.some(function (s) { return s.best; })) {
      var ul = document.createElement("ul");
      ul.className = "legend";
      series.forEach(function (s, i) {
        var li = document.createElement("li");
        if (s.best) li.className = "best";
        var sw = document.createElement("span");
        sw.className = "swatch";
        sw.style.background = s.color || PALETTE[i % PALETTE.length];
        li.appendChild(sw);
        li.appendChild(document.createTextNode(s.name + (s.best ? " ★ best" : "")));
        ul.appendChild(li);
      });
      fig.appendChild(ul);
    }
    if (opts.caption) {
      var cap = document.createElement("figcaption");
      cap.textContent = opts.caption;
      fig.insertBefore(cap, fig.firstChild);
    }
    if (opts.table && series.length) {
      var det = document.createElement("details");
      var sum = document.createElement("summary");
      sum.textContent = "Data";
      det.appendChild(sum);
      var tbl = document.createElement("table");
      var tr = tbl.insertRow();
      [opts.xLabel || "x"].concat(series.map(function (s) { return s.name; })).forEach(function (t) {
        var th = document.createElement("th");
        th.textContent = t;
        tr.appendChild(th);
      });
      var keys = [];
      series.forEach(function (s) {
        s.points.forEach(function (p) { if (keys.indexOf(p[0]) < 0) keys.push(p[0]); });
      });
      keys.sort(function (a, b) { return a - b; }).forEach(function (k) {
        var row = tbl.insertRow();
        row.insertCell().textContent = xf(k);
        series.forEach(function (s) {
          var p = s.points.find(function (q) { return q[0] === k; });
          row.insertCell().textContent = p && p[1] !== null ? yf(p[1]) : "";
        });
      });
      det.appendChild(tbl);
      fig.appendChild(det);
    }
    return fig;
  }

  window.IVChart = {line: line, ticks: ticks, format: defaultFormat, palette: PALETTE};
})();
