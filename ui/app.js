/*
 * itemvecd dashboard: the pages (Overview, Jobs, Models, Explore, Upload)
 * drawn from the /v1 API (docs/api.md, /v1/openapi.json). Hash routes
 * (#/jobs/j3) so the daemon serves one page; every text from the API goes
 * in through textContent, never as HTML. When the API answers 401 the
 * token dialog asks for a token, kept in sessionStorage (this tab only).
 * Errors are shown as the problem's title and detail (RFC 9457), with
 * line and column for uploads. Polling (progress, metrics) runs only while
 * its page is shown and stops when the page changes.
 */
(function () {
  "use strict";

  /* ---------- small DOM helpers ---------- */

  // h("a", {href: "#/"}, "text", child...) -> element; null children skipped.
  function h(tag, attrs) {
    var e = document.createElement(tag);
    if (attrs) {
      for (var k in attrs) {
        var v = attrs[k];
        if (v === undefined || v === null || v === false) continue;
        if (k === "class") e.className = v;
        else if (k === "text") e.textContent = v;
        else if (k.slice(0, 2) === "on") e.addEventListener(k.slice(2), v);
        else e.setAttribute(k, v === true ? "" : v);
      }
    }
    for (var i = 2; i < arguments.length; i++) append(e, arguments[i]);
    return e;
  }
  function append(e, c) {
    if (c === null || c === undefined || c === false) return;
    if (Array.isArray(c)) { c.forEach(function (x) { append(e, x); }); return; }
    e.appendChild(typeof c === "object" ? c : document.createTextNode(String(c)));
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function $(id) { return document.getElementById(id); }
  function announce(msg) { $("status").textContent = msg; }

  function fmtNum(v, digits) {
    if (v === null || v === undefined) return "—";
    if (typeof v !== "number") return String(v);
    if (Number.isInteger(v)) return v.toLocaleString("en");
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e7 || a < 1e-3)) return v.toExponential(3);
    return v.toLocaleString("en", {maximumFractionDigits: digits === undefined ? 4 : digits});
  }
  // Scores: about five significant digits, never in exponent form.
  function fmtScore(v) {
    if (typeof v !== "number") return "—";
    if (Number.isInteger(v)) return v.toLocaleString("en"); // counts
    var a = Math.abs(v);
    return v.toLocaleString("en", {maximumFractionDigits: a >= 1000 ? 1 : a >= 10 ? 3 : 4,
                                   minimumFractionDigits: a >= 1000 ? 1 : a >= 10 ? 3 : 4});
  }
  function neighbourItem(n) {
    return h("li", {"data-id": n.id}, h("div", {class: "n-row"},
      h("span", {class: "n-main"}, itemLink(n.id, n.title || n.id),
        n.artist ? h("span", {class: "n-artist"}, n.artist) : null),
      h("span", {class: "n-score", title: "score " + n.score}, fmtScore(n.score))));
  }
  function fmtBytes(b) {
    if (b === null || b === undefined) return "—";
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(1) : b) + " " + u[i];
  }
  function fmtSeconds(s) {
    if (s === null || s === undefined || !isFinite(s)) return "—";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + Math.round(s - m * 60) + " s";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }
  function fmtTime(iso) {
    if (!iso) return h("span", {class: "muted"}, "—");
    var d = new Date(iso);
    return h("time", {datetime: iso, title: iso}, d.toLocaleString("en-GB", {
      year: "numeric", month: "short", day: "2-digit", hour: "2-digit", minute: "2-digit",
      second: "2-digit"}));
  }
  function duration(job) {
    if (!job.started_at) return null;
    var end = job.finished_at ? Date.parse(job.finished_at) : Date.now();
    return (end - Date.parse(job.started_at)) / 1000;
  }
  function enc(s) { return encodeURIComponent(s); }
  function itemLink(id, text) {
    return h("a", {href: "#/items/" + enc(id)}, text === undefined ? id : text);
  }

  /* ---------- the API client ---------- */

  var TOKEN_KEY = "itemvec.token";
  var api = {
    token: function () { return sessionStorage.getItem(TOKEN_KEY) || ""; },
    setToken: function (t) {
      if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY);
      updateTokenButton();
    },
    headers: function (extra) {
      var hd = {};
      var t = api.token();
      if (t) hd.Authorization = "Bearer " + t;
      for (var k in extra || {}) hd[k] = extra[k];
      return hd;
    },
    // Resolves with the parsed JSON (or text); rejects with an ApiError
    // carrying the problem object. A 401 opens the token dialog.
    call: function (method, path, opts) {
      opts = opts || {};
      var init = {method: method, headers: api.headers(opts.headers)};
      if (opts.json !== undefined) {
        init.body = JSON.stringify(opts.json);
        init.headers["Content-Type"] = "application/json";
      } else if (opts.body !== undefined) {
        init.body = opts.body;
      }
      var sent = !!api.token();
      return fetch(path, init).then(function (r) {
        var ct = r.headers.get("Content-Type") || "";
        var body = ct.indexOf("json") >= 0 && r.status !== 204 && r.status !== 304
          ? r.json().catch(function () { return null; }) : r.text();
        return body.then(function (data) {
          if (r.ok) return opts.raw ? {status: r.status, data: data, response: r} : data;
          throw apiError(r.status, data, sent);
        });
      }, function (e) {
        throw new ApiError({title: "Network error", status: 0,
                            detail: "itemvecd did not answer (" + e.message + "). Is it running?"});
      });
    },
    get: function (path) { return api.call("GET", path); },
    post: function (path, json) { return api.call("POST", path, {json: json || {}}); }
  };

  function ApiError(problem) {
    this.problem = problem;
    this.message = problem.title + ": " + problem.detail;
  }
  function apiError(status, data, tokenSent) {
    var p = data && typeof data === "object" ? data : {
      title: "HTTP " + status, status: status,
      detail: typeof data === "string" && data ? data.slice(0, 300) : "no detail"};
    if (p.status === undefined) p.status = status;
    var err = new ApiError(p);
    if (status === 401) askToken(p, tokenSent);
    if (status === 403) p.hint = "This action needs a read-write token; the token in use is " +
      "read-only. Use “Token” at the top to enter another one.";
    return err;
  }

  // <div role=alert> with the problem's title, status and detail (and
  // line/column, field errors, a hint).
  function problemBox(err, context) {
    var p = err && err.problem ? err.problem : {title: "Error", detail: String(err)};
    var box = h("div", {class: "problem", role: "alert"},
      h("p", {class: "problem-title"}, h("strong", null, p.title || "Error"),
        p.status ? " (" + p.status + ")" : "", context ? " — " + context : ""),
      h("p", {class: "problem-detail"}, p.detail || ""));
    if (p.line) {
      box.appendChild(h("p", {class: "problem-where"}, "Line ",
        h("strong", {class: "line"}, String(p.line)),
        p.column ? [", column ", h("strong", {class: "column"}, String(p.column))] : ""));
    }
    if (Array.isArray(p.errors) && p.errors.length) {
      box.appendChild(h("ul", null, p.errors.map(function (e) {
        return h("li", null, h("code", null, e.pointer || ""), " ", e.detail || "");
      })));
    }
    if (p.hint) box.appendChild(h("p", {class: "hint"}, p.hint));
    return box;
  }

  /* ---------- the token dialog ---------- */

  function updateTokenButton() {
    var b = $("token-button");
    var has = !!api.token();
    b.textContent = has ? "Token ✓" : "Token";
    b.setAttribute("aria-label", has ? "API token: set (change or forget it)" : "API token: none set");
  }
  var tokenPrompted = false;
  function askToken(problem, tokenSent) {
    var msg = tokenSent
      ? "The token was refused: " + (problem.detail || "not valid") + " (" + problem.status +
        " " + (problem.title || "Unauthorized") + "). Check it and enter it again."
      : "This itemvecd requires an API token: " + (problem.detail || "") + ".";
    $("token-message").textContent = msg;
    $("token-message").className = tokenSent ? "problem" : "";
    var d = $("token-dialog");
    if (!d.open) {
      tokenPrompted = true;
      $("token-input").value = "";
      if (d.showModal) d.showModal(); else d.setAttribute("open", "");
      $("token-input").focus();
    }
  }
  function initTokenDialog() {
    var d = $("token-dialog");
    $("token-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      var v = $("token-input").value.trim();
      if (!v) return;
      api.setToken(v);
      d.close();
      announce("Token saved for this tab");
      render();
    });
    $("token-forget").addEventListener("click", function () {
      api.setToken("");
      d.close();
      announce("Token forgotten");
      render();
    });
    $("token-cancel").addEventListener("click", function () { d.close(); });
    $("token-button").addEventListener("click", function () {
      $("token-message").className = "";
      $("token-message").textContent = api.token()
        ? "A token is set for this tab. Enter another one, or forget it."
        : "No token is set. Enter one if this itemvecd requires it.";
      $("token-input").value = "";
      d.showModal();
      $("token-input").focus();
    });
    updateTokenButton();
  }

  /* ---------- routing and page lifecycle ---------- */

  var page = {gen: 0, timers: []};
  // Runs fn every ms while the current page is shown (and once now).
  function every(ms, fn) {
    var gen = page.gen;
    var tick = function () {
      if (gen !== page.gen) return;
      Promise.resolve(fn()).catch(function () {}).then(function () {
        if (gen === page.gen) page.timers.push(setTimeout(tick, ms));
      });
    };
    tick();
  }
  function alive(gen) { return gen === page.gen; }

  function parseHash() {
    var hash = location.hash.replace(/^#/, "") || "/";
    var qi = hash.indexOf("?");
    var query = new URLSearchParams(qi >= 0 ? hash.slice(qi + 1) : "");
    var parts = (qi >= 0 ? hash.slice(0, qi) : hash).split("/").filter(Boolean)
      .map(function (s) { try { return decodeURIComponent(s); } catch (e) { return s; } });
    return {parts: parts, query: query};
  }

  var routes = {
    "": overviewPage, jobs: jobsPage, models: modelsPage, explore: explorePage,
    items: itemPage, upload: uploadPage
  };

  function render() {
    page.timers.forEach(clearTimeout);
    page.timers = [];
    page.gen++;
    var r = parseHash();
    var name = r.parts[0] || "";
    var fn = routes[name] || notFoundPage;
    var navName = name === "" ? "overview" : name === "items" ? "explore" : name;
    document.querySelectorAll("[data-nav]").forEach(function (a) {
      if (a.getAttribute("data-nav") === navName) a.setAttribute("aria-current", "page");
      else a.removeAttribute("aria-current");
    });
    var main = clear($("main"));
    page.focus = null;
    fn(main, r.parts.slice(1), r.query, page.gen);
    var h1 = main.querySelector("h1");
    if (h1) {
      h1.setAttribute("tabindex", "-1");
      document.title = h1.textContent + " · itemvecd";
    }
    // after a navigation, focus goes to the new page's heading (or the
    // field a page names), so keyboard and screen-reader users start there
    var target = page.focus || h1;
    if (render.moved && target && !$("token-dialog").open) target.focus();
    render.moved = true;
  }

  // Replaces el's content by build() only when the data changed, so a
  // poll does not take the keyboard focus away from an unchanged link.
  function redraw(el, data, build) {
    var key = JSON.stringify(data);
    if (el.dataset.drawn === key) return;
    el.dataset.drawn = key;
    clear(el);
    build();
  }

  function section(title, cls) {
    return h("section", {class: cls || "card"}, h("h2", null, title));
  }
  function kv(rows) {
    return h("dl", {class: "kv"}, rows.filter(Boolean).map(function (r) {
      return [h("dt", null, r[0]), h("dd", null, r[1])];
    }));
  }
  function table(caption, headers, rows, cls) {
    var t = h("table", {class: cls || ""});
    if (caption) t.appendChild(h("caption", {class: "visually-hidden"}, caption));
    var thead = t.createTHead().insertRow();
    headers.forEach(function (x) {
      var th = h("th", {scope: "col"}, x);
      thead.appendChild(th);
    });
    var tb = t.createTBody();
    rows.forEach(function (r) {
      var tr = tb.insertRow();
      r.forEach(function (c) {
        var td = tr.insertCell();
        if (c && typeof c === "object" && c.nodeType) td.appendChild(c);
        else if (c && typeof c === "object" && c.cell) {
          if (c.cls) td.className = c.cls;
          append(td, c.cell);
        } else td.textContent = c === null || c === undefined ? "—" : String(c);
      });
    });
    return h("div", {class: "table-wrap"}, t);
  }
  function stateBadge(state) {
    return h("span", {class: "badge state-" + state}, state);
  }
  function progressBar(job) {
    var p = job.progress || {};
    var f = typeof p.fraction === "number" ? p.fraction : (job.state === "succeeded" ? 1 : 0);
    var label = (p.stage ? p.stage + " " : "") + Math.round(f * 100) + "%";
    return h("span", {class: "progress"},
      h("progress", {max: "1", value: String(f), "aria-label": job.id + " progress " + label}),
      h("span", {class: "progress-label"}, label));
  }
  function loading(el, what) {
    clear(el).appendChild(h("p", {class: "muted"}, "Loading " + what + "…"));
  }

  /* ---------- Overview ---------- */

  var METRICS_WINDOW = 150; // samples kept (5 minutes at one per 2 s)
  var samples = [];          // kept across visits to the overview

  // Prometheus text -> [{name, labels, value}]
  function parseMetrics(text) {
    var out = [];
    text.split("\n").forEach(function (l) {
      if (!l || l[0] === "#") return;
      var m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(l);
      if (!m) return;
      var labels = {};
      (m[3] || "").replace(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g, function (_, k, v) {
        labels[k] = v;
        return "";
      });
      out.push({name: m[1], labels: labels, value: parseFloat(m[4])});
    });
    return out;
  }

  // One sample: total requests, the duration histogram summed over routes
  // (the scrape of /metrics itself left out), rows stored.
  function sampleOf(metrics) {
    var s = {t: Date.now() / 1000, requests: 0, buckets: {}, rows: null};
    metrics.forEach(function (m) {
      if (m.labels.route === "/metrics") return;
      if (m.name === "itemvecd_http_requests_total") s.requests += m.value;
      else if (m.name === "itemvecd_http_request_duration_seconds_bucket") {
        var le = m.labels.le === "+Inf" ? Infinity : parseFloat(m.labels.le);
        s.buckets[le] = (s.buckets[le] || 0) + m.value;
      } else if (m.name === "itemvecd_memberships") s.rows = m.value;
    });
    return s;
  }

  // p99 of the requests between two samples, interpolated inside its
  // bucket as Prometheus' histogram_quantile does; null without requests.
  function p99(a, b) {
    var les = Object.keys(b.buckets).map(Number).sort(function (x, y) { return x - y; });
    var d = les.map(function (le) { return (b.buckets[le] || 0) - (a.buckets[le] || 0); });
    var total = d[d.length - 1];
    if (!(total > 0)) return null;
    var want = 0.99 * total, prevLe = 0, prevN = 0;
    for (var i = 0; i < les.length; i++) {
      if (d[i] >= want) {
        if (les[i] === Infinity) return prevLe;
        return prevLe + (les[i] - prevLe) * (want - prevN) / Math.max(1e-9, d[i] - prevN);
      }
      prevLe = les[i];
      prevN = d[i];
    }
    return null;
  }

  function overviewPage(main, parts, query, gen) {
    main.appendChild(h("h1", null, "Overview"));
    var grid = h("div", {class: "grid"});
    main.appendChild(grid);
    var counts = section("Stored"), model = section("Active model"),
        build = section("Build"), jobs = section("Running and queued jobs", "card wide"),
        charts = section("Serving, sampled every 2 s from /metrics", "card wide");
    [counts, model, build, jobs, charts].forEach(function (s) { grid.appendChild(s); });
    var countsBody = counts.appendChild(h("div")), modelBody = model.appendChild(h("div")),
        buildBody = build.appendChild(h("div")), jobsBody = jobs.appendChild(h("div")),
        chartsBody = charts.appendChild(h("div", {class: "spark-grid"}));
    loading(countsBody, "counts");

    every(5000, function () {
      return api.get("/v1/info").then(function (info) {
        if (!alive(gen)) return;
        clear(countsBody).appendChild(h("div", {class: "stats"},
          stat("Playlists", info.counts.playlists), stat("Items", info.counts.items),
          stat("Memberships (rows)", info.counts.memberships)));
        clear(modelBody).appendChild(info.active_model ? kv([
          ["Model", h("a", {href: "#/models/" + enc(info.active_model.id)}, info.active_model.id)],
          ["Items", fmtNum(info.active_model.items)],
          ["Dimensions", fmtNum(info.active_model.dimensions)]
        ]) : h("p", {class: "muted"}, "No model is active. Run a train job (Jobs page)."));
        var b = info.build || {};
        clear(buildBody).appendChild(kv([
          ["Version", info.version], ["Build", b.type], ["Compiler", b.compiler],
          ["BLAS", h("span", {class: "wrap"}, b.blas || "—")], ["BLAS core", b.blas_core],
          ["BLAS threads", fmtNum(b.blas_threads)],
          ["Uptime", fmtSeconds(info.uptime_seconds)]
        ]));
      }, function (e) {
        if (alive(gen)) clear(countsBody).appendChild(problemBox(e, "GET /v1/info"));
      });
    });

    every(2000, function () {
      return Promise.all([api.get("/v1/jobs?state=running&page_size=20"),
                          api.get("/v1/jobs?state=queued&page_size=20")]).then(function (r) {
        if (!alive(gen)) return;
        var list = r[0].jobs.concat(r[1].jobs);
        redraw(jobsBody, list, function () { jobsBody.appendChild(list.length ? table("Running and queued jobs",
          ["Job", "Type", "State", "Progress", "Running for"],
          list.map(function (j) {
            return [h("a", {href: "#/jobs/" + enc(j.id)}, j.id), j.type, stateBadge(j.state),
                    progressBar(j), fmtSeconds(duration(j))];
          })) : h("p", {class: "muted"}, "No job is running. ",
                  h("a", {href: "#/jobs"}, "All jobs")));
        });
      }, function (e) {
        if (alive(gen)) clear(jobsBody).appendChild(problemBox(e, "GET /v1/jobs"));
      });
    });

    var sparks = {
      rps: h("div", {class: "spark"}), p99: h("div", {class: "spark"}),
      rows: h("div", {class: "spark"})
    };
    chartsBody.appendChild(sparks.rps);
    chartsBody.appendChild(sparks.p99);
    chartsBody.appendChild(sparks.rows);
    chartsBody.appendChild(h("p", {class: "hint"},
      "Requests/s and p99 latency over all routes but /metrics (this page's own polls of " +
      "/v1/info and /v1/jobs count too); the samples stay in this tab only."));
    drawSparks(sparks);
    every(2000, function () {
      return api.call("GET", "/metrics").then(function (text) {
        if (!alive(gen)) return;
        samples.push(sampleOf(parseMetrics(text)));
        if (samples.length > METRICS_WINDOW) samples.shift();
        drawSparks(sparks);
      }, function (e) {
        if (alive(gen)) clear(chartsBody).appendChild(problemBox(e, "GET /metrics"));
      });
    });
  }

  function stat(label, value) {
    return h("div", {class: "stat"}, h("div", {class: "stat-value"}, fmtNum(value)),
             h("div", {class: "stat-label"}, label));
  }

  function drawSparks(sparks) {
    var t0 = samples.length ? samples[samples.length - 1].t : 0;
    var rps = [], lat = [], rows = [];
    for (var i = 1; i < samples.length; i++) {
      var a = samples[i - 1], b = samples[i], x = b.t - t0;
      var dt = b.t - a.t;
      rps.push([x, dt > 0 && b.requests >= a.requests ? (b.requests - a.requests) / dt : null]);
      var q = p99(a, b);
      lat.push([x, q === null ? null : q * 1000]);
    }
    samples.forEach(function (s) { rows.push([s.t - t0, s.rows]); });
    var xf = function (v) { return Math.round(v) + " s"; };
    var last = function (arr, f) {
      for (var i = arr.length - 1; i >= 0; i--) if (arr[i][1] !== null) return f(arr[i][1]);
      return "—";
    };
    [["rps", "Requests per second", rps, function (v) { return fmtNum(v, 1); }],
     ["p99", "p99 latency (ms)", lat, function (v) { return fmtNum(v, 2); }],
     ["rows", "Rows stored", rows, function (v) { return fmtNum(v); }]].forEach(function (c) {
      var el = clear(sparks[c[0]]);
      el.appendChild(h("div", {class: "spark-head"}, h("span", null, c[1]),
                       h("strong", null, last(c[2], c[3]))));
      el.appendChild(IVChart.line({title: c[1], small: true, dots: false, xFormat: xf, yMin: 0,
                                   series: [{name: c[1], points: c[2]}],
                                   empty: "collecting samples…"}));
    });
  }

  /* ---------- Jobs ---------- */

  var JOB_TYPES = ["pmi", "train", "evaluate"];
  var STATES = ["queued", "running", "succeeded", "failed", "cancelled"];

  function jobsPage(main, parts, query, gen) {
    if (parts.length) return jobPage(main, parts[0], gen);
    main.appendChild(h("h1", null, "Jobs"));
    var form = h("form", {class: "filters", "aria-label": "Filter jobs"},
      h("label", null, "State ", h("select", {name: "state"},
        h("option", {value: ""}, "any"), STATES.map(function (s) {
          return h("option", {value: s, selected: query.get("state") === s}, s);
        }))),
      h("label", null, "Type ", h("select", {name: "type"},
        h("option", {value: ""}, "any"), JOB_TYPES.map(function (s) {
          return h("option", {value: s, selected: query.get("type") === s}, s);
        }))));
    form.addEventListener("change", function () {
      var q = new URLSearchParams();
      ["state", "type"].forEach(function (k) { if (form[k].value) q.set(k, form[k].value); });
      location.hash = "#/jobs" + (q.toString() ? "?" + q : "");
    });
    main.appendChild(form);
    var listEl = main.appendChild(h("div"));
    main.appendChild(newJobForm());
    var token = query.get("page_token") || "";
    loading(listEl, "jobs");
    every(2000, function () {
      var q = new URLSearchParams({page_size: "50"});
      ["state", "type"].forEach(function (k) { if (query.get(k)) q.set(k, query.get(k)); });
      if (token) q.set("page_token", token);
      return api.get("/v1/jobs?" + q).then(function (r) {
        if (!alive(gen)) return;
        redraw(listEl, r, function () { drawJobList(listEl, r, query); });
      }, function (e) {
        if (alive(gen)) clear(listEl).appendChild(problemBox(e, "GET /v1/jobs"));
      });
    });
  }

  function drawJobList(listEl, r, query) {
        if (!r.jobs.length) {
          listEl.appendChild(h("p", {class: "muted"}, "No jobs" +
            (query.toString() ? " match the filter." : " yet: start one below.")));
          return;
        }
        listEl.appendChild(table("Jobs, newest first",
          ["Job", "Type", "State", "Created", "Duration", "Progress"],
          r.jobs.map(function (j) {
            return [h("a", {href: "#/jobs/" + enc(j.id)}, j.id), j.type, stateBadge(j.state),
                    fmtTime(j.created_at), fmtSeconds(duration(j)), progressBar(j)];
          })));
        if (r.next_page_token) {
          var q2 = new URLSearchParams(query);
          q2.set("page_token", r.next_page_token);
          listEl.appendChild(h("p", null, h("a", {href: "#/jobs?" + q2}, "Older jobs →")));
        }
  }

  function newJobForm() {
    var s = section("Start a job");
    var out = h("div");
    var params = h("textarea", {id: "job-params", rows: "3", spellcheck: "false"}, "{}");
    var type = h("select", {id: "job-type"}, JOB_TYPES.map(function (t) {
      return h("option", {value: t}, t);
    }));
    var form = h("form", {class: "stack"},
      h("label", {for: "job-type"}, "Type"), type,
      h("label", {for: "job-params"}, "Params (JSON object; empty for the defaults, see docs/api.md)"),
      params,
      h("div", {class: "actions"}, h("button", {type: "submit", class: "primary"}, "Start job")),
      out);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      clear(out);
      var p;
      try {
        p = params.value.trim() ? JSON.parse(params.value) : {};
      } catch (e) {
        out.appendChild(problemBox({problem: {title: "Bad params", detail: e.message}}));
        return;
      }
      api.post("/v1/jobs", {type: type.value, params: p}).then(function (job) {
        announce("Job " + job.id + " started");
        location.hash = "#/jobs/" + enc(job.id);
      }, function (e) { out.appendChild(problemBox(e, "POST /v1/jobs")); });
    });
    s.appendChild(form);
    return s;
  }

  function jobPage(main, id, gen) {
    main.appendChild(h("p", {class: "crumbs"}, h("a", {href: "#/jobs"}, "Jobs"), " / ", id));
    var head = main.appendChild(h("h1", null, "Job " + id));
    var actions = main.appendChild(h("div", {class: "actions"}));
    var msg = main.appendChild(h("div"));
    var body = main.appendChild(h("div", {class: "grid"}));
    loading(body, "the job");
    var lastState = null;
    every(1000, function () {
      if (lastState && ["succeeded", "failed", "cancelled"].indexOf(lastState) >= 0) return;
      return api.get("/v1/jobs/" + enc(id)).then(function (job) {
        if (!alive(gen)) return;
        var changed = job.state !== lastState;
        lastState = job.state;
        head.textContent = "Job " + job.id + " · " + job.type;
        if (changed) clear(actions);
        if (changed && (job.state === "queued" || job.state === "running")) {
          actions.appendChild(h("button", {type: "button", class: "danger", onclick: function () {
            clear(msg);
            api.post("/v1/jobs/" + enc(id) + "/cancel").then(function (j) {
              announce("Cancel requested for " + j.id);
              msg.appendChild(h("p", {class: "ok"}, "Cancel requested: the job stops at its next checkpoint."));
            }, function (e) { msg.appendChild(problemBox(e, "cancel")); });
          }}, "Cancel job"));
        }
        redraw(body, job, function () { drawJob(body, job); });
      }, function (e) {
        if (alive(gen)) clear(body).appendChild(problemBox(e, "GET /v1/jobs/" + id));
      });
    });
  }

  function drawJob(body, job) {
    var st = section("State");
    st.appendChild(kv([
      ["State", stateBadge(job.state)], ["Progress", progressBar(job)],
      ["Created", fmtTime(job.created_at)], ["Started", fmtTime(job.started_at)],
      ["Finished", fmtTime(job.finished_at)], ["Duration", fmtSeconds(duration(job))],
      job.attempts !== undefined ? ["Attempts", fmtNum(job.attempts)] : null,
      job.result && job.result.model ? ["Model", h("a", {href: "#/models/" + enc(job.result.model)},
                                                  job.result.model)] : null
    ]));
    if (job.error) st.appendChild(problemBox({problem: job.error}, "the job failed"));
    body.appendChild(st);
    var pr = section("Params");
    pr.appendChild(kv(Object.keys(job.params || {}).map(function (k) {
      return [k, h("code", null, JSON.stringify(job.params[k]))];
    })));
    body.appendChild(pr);
    var p = job.progress || {};
    var live = Object.keys(p).filter(function (k) {
      return k !== "loss_per_iteration" && typeof p[k] !== "object";
    });
    if (live.length && (job.state === "running" || job.state === "queued")) {
      var ps = section("Live progress");
      ps.appendChild(kv(live.map(function (k) { return [k, fmtNum(p[k])]; })));
      body.appendChild(ps);
    }
    if (job.type === "train") {
      var loss = (job.result && job.result.loss) || p.loss_per_iteration || [];
      body.appendChild(lossSection(loss, "Loss per iteration"));
    }
    if (job.type === "evaluate" && job.result && job.result.methods) {
      evaluateSections(job.result).forEach(function (s) { body.appendChild(s); });
    }
    if (job.result) {
      var rs = section("Result", "card wide");
      var flat = Object.keys(job.result).filter(function (k) {
        return typeof job.result[k] !== "object" || job.result[k] === null;
      });
      rs.appendChild(kv(flat.map(function (k) { return [k, fmtNum(job.result[k])]; })));
      rs.appendChild(h("details", null, h("summary", null, "Raw result JSON"),
                       h("pre", null, JSON.stringify(job.result, null, 2))));
      body.appendChild(rs);
    }
  }

  function lossSection(loss, title) {
    var s = section(title, "card wide");
    s.appendChild(IVChart.line({
      title: title, xLabel: "iteration", yLabel: "loss", xInteger: true, table: true,
      series: [{name: "loss", points: loss.map(function (v, i) { return [i + 1, v]; })}],
      empty: "no iteration finished yet"
    }));
    s.lastChild.classList.add("loss-chart");
    return s;
  }

  // Evaluate: one chart per metric (x: k, a line per method), the method
  // with the highest value at the largest k highlighted, and a table with
  // the best value of each column marked.
  function evaluateSections(res) {
    var methods = Object.keys(res.methods);
    var ks = (res.k || []).slice().sort(function (a, b) { return a - b; });
    var out = [];
    var summary = section("Evaluation", "card wide");
    summary.appendChild(kv([
      ["Held-out fraction", fmtNum(res.holdout_fraction)],
      res.playlists ? ["Playlists", "train " + fmtNum(res.playlists.train) + ", held out " +
                       fmtNum(res.playlists.heldout) + ", scored " + fmtNum(res.playlists.scored)] : null,
      ["Queries", fmtNum(res.queries)], ["Items", fmtNum(res.items)],
      res.best ? ["Best (reported)", h("code", null, JSON.stringify(res.best))] : null
    ]));
    out.push(summary);
    var cols = [], rows = methods.map(function (m) { return [m]; });
    ["recall", "hit", "coverage"].forEach(function (metric) {
      var kmax = ks[ks.length - 1];
      var best = null, bestV = -Infinity;
      methods.forEach(function (m) {
        var v = res.methods[m][metric + "@" + kmax];
        if (typeof v === "number" && v > bestV) { bestV = v; best = m; }
      });
      var s = section(metric + "@k", "card");
      s.appendChild(IVChart.line({
        title: metric + "@k by method", xLabel: "k", yLabel: metric, xTicks: ks, table: true,
        width: 420, height: 280,
        yMin: 0, yFormat: function (v) { return fmtNum(v, 3); },
        series: methods.map(function (m) {
          return {name: m, best: m === best, points: ks.map(function (k) {
            var v = res.methods[m][metric + "@" + k];
            return [k, typeof v === "number" ? v : null];
          })};
        })
      }));
      s.lastChild.classList.add("eval-chart");
      s.lastChild.setAttribute("data-metric", metric);
      out.push(s);
      ks.forEach(function (k) {
        var key = metric + "@" + k;
        cols.push(key);
        var colBest = Math.max.apply(null, methods.map(function (m) {
          var v = res.methods[m][key];
          return typeof v === "number" ? v : -Infinity;
        }));
        methods.forEach(function (m, i) {
          var v = res.methods[m][key];
          rows[i].push(v === colBest ? {cell: [h("strong", null, fmtNum(v, 4)),
                                               h("span", {class: "visually-hidden"}, " (best)")],
                                        cls: "best"} : fmtNum(v, 4));
        });
      });
    });
    var t = section("Methods at each k (best of each column in bold)", "card wide");
    t.appendChild(table("Evaluate metrics by method", ["method"].concat(cols), rows, "eval-table"));
    out.push(t);
    return out;
  }

  /* ---------- Models ---------- */

  function modelsPage(main, parts, query, gen) {
    if (parts.length) return modelPage(main, parts[0], gen);
    main.appendChild(h("h1", null, "Models"));
    var msg = main.appendChild(h("div"));
    var listEl = main.appendChild(h("div"));
    loading(listEl, "models");
    var load = function () {
      return api.get("/v1/models?page_size=100").then(function (r) {
        if (!alive(gen)) return;
        clear(listEl);
        if (!r.models.length) {
          listEl.appendChild(h("p", {class: "muted"}, "No models yet: a succeeded train job creates one."));
          return;
        }
        listEl.appendChild(table("Models, newest first",
          ["Model", "Job", "Created", "Dimensions", "Items", "Active", "Actions"],
          r.models.map(function (m) {
            return [h("a", {href: "#/models/" + enc(m.id)}, m.id),
                    h("a", {href: "#/jobs/" + enc(m.job)}, m.job), fmtTime(m.created_at),
                    fmtNum(m.dimensions), fmtNum(m.items),
                    m.active ? h("span", {class: "badge state-succeeded"}, "active") : "",
                    modelActions(m, msg, load)];
          })));
      }, function (e) {
        if (alive(gen)) clear(listEl).appendChild(problemBox(e, "GET /v1/models"));
      });
    };
    load();
  }

  function modelActions(m, msg, reload) {
    var box = h("span", {class: "row-actions"});
    if (!m.active) {
      box.appendChild(h("button", {type: "button", onclick: function (ev) {
        var b = ev.currentTarget;
        b.disabled = true;
        clear(msg);
        api.post("/v1/models/" + enc(m.id) + "/activate").then(function () {
          announce("Model " + m.id + " is active");
          msg.appendChild(h("p", {class: "ok"}, "Model " + m.id + " is now active."));
          reload();
        }, function (e) {
          b.disabled = false;
          msg.appendChild(problemBox(e, "activate " + m.id));
        });
      }}, "Activate"));
    }
    box.appendChild(h("button", {type: "button", onclick: function (ev) {
      downloadEmbeddings(m.id, ev.currentTarget, msg);
    }}, "Download embeddings"));
    return box;
  }

  // The JSONL export. Without a token a plain link does it (streamed by
  // the browser); with one, fetch sends the header and the file is saved
  // from a blob.
  function downloadEmbeddings(id, button, msg) {
    var url = "/v1/models/" + enc(id) + "/embeddings";
    var name = "embeddings-" + id + ".jsonl";
    var save = function (href) {
      var a = h("a", {href: href, download: name, class: "visually-hidden"});
      document.body.appendChild(a);
      a.click();
      a.remove();
    };
    if (!api.token()) { save(url); return; }
    button.disabled = true;
    fetch(url, {headers: api.headers()}).then(function (r) {
      if (!r.ok) return r.json().then(function (p) { throw apiError(r.status, p, true); });
      return r.blob();
    }).then(function (blob) {
      var href = URL.createObjectURL(blob);
      save(href);
      setTimeout(function () { URL.revokeObjectURL(href); }, 10000);
    }).catch(function (e) { clear(msg).appendChild(problemBox(e, "download " + id)); })
      .then(function () { button.disabled = false; });
  }

  function modelPage(main, id, gen) {
    main.appendChild(h("p", {class: "crumbs"}, h("a", {href: "#/models"}, "Models"), " / ", id));
    main.appendChild(h("h1", null, "Model " + id));
    var msg = main.appendChild(h("div"));
    var body = main.appendChild(h("div", {class: "grid"}));
    loading(body, "the model");
    var load = function () {
      return api.get("/v1/models/" + enc(id)).then(function (m) {
        if (!alive(gen)) return;
        clear(body);
        var s = section("Model");
        s.appendChild(kv([
          ["Active", m.active ? "yes" : "no"], ["Created", fmtTime(m.created_at)],
          ["Train job", h("a", {href: "#/jobs/" + enc(m.job)}, m.job)],
          ["PMI job", m.pmi_job ? h("a", {href: "#/jobs/" + enc(m.pmi_job)}, m.pmi_job) : "—"],
          ["Dimensions", fmtNum(m.dimensions)], ["Items", fmtNum(m.items)],
          m.source ? ["Source", m.source] : null
        ]));
        s.appendChild(h("div", {class: "actions"}, modelActions(m, msg, load)));
        body.appendChild(s);
        var sv = section("Serving");
        sv.appendChild(m.serving ? kv([
          ["Precomputed lists", m.serving.precomputed ? "yes (top-k lookups)" : "no (exact scans)"],
          ["Load time", fmtSeconds(m.serving.load_seconds)],
          ["Precompute time", fmtSeconds(m.serving.precompute_seconds)],
          ["Memory", fmtBytes(m.serving.memory_bytes)],
          m.serving.index ? ["Index", typeof m.serving.index !== "object" ? String(m.serving.index)
            : m.serving.index.kind !== "ann" ? "exact"
            : "ANN (" + m.serving.index.library + "), recall@10 cosine " +
              fmtNum(m.serving.index.recall_at_10.cosine, 3) + " / dot " +
              fmtNum(m.serving.index.recall_at_10.dot, 3) + ", built in " +
              fmtSeconds(m.serving.index.build_seconds) + ", " +
              fmtBytes(m.serving.index.memory_bytes)] : null
        ]) : h("p", {class: "muted"}, "Not served: only the active model is loaded for queries."));
        body.appendChild(sv);
        var pr = section("Params");
        pr.appendChild(kv(Object.keys(m.params || {}).map(function (k) {
          return [k, h("code", null, JSON.stringify(m.params[k]))];
        })));
        body.appendChild(pr);
        body.appendChild(lossSection(m.loss || [], "Training loss per iteration"));
      }, function (e) {
        if (alive(gen)) clear(body).appendChild(problemBox(e, "GET /v1/models/" + id));
      });
    };
    load();
  }

  /* ---------- Explore: search and item pages ---------- */

  var playlist = []; // the continuation box's items, kept across item pages

  function explorePage(main, parts, query, gen) {
    main.appendChild(h("h1", null, "Explore"));
    var input = h("input", {id: "search", type: "search", autocomplete: "off",
                            value: query.get("q") || "", "aria-describedby": "search-hint",
                            placeholder: "e.g. 2114406, Beat It, The Beatles"});
    var form = h("form", {class: "search", role: "search"},
      h("label", {for: "search"}, "Search items by id, title or artist prefix"),
      h("div", {class: "inline"}, input, h("button", {type: "submit", class: "primary"}, "Search")),
      h("p", {id: "search-hint", class: "hint"},
        "Case-insensitive for ASCII letters. Matches on the id come first, then titles, then artists."));
    main.appendChild(form);
    var results = main.appendChild(h("div", {id: "results", "aria-live": "polite"}));
    var timer = null;
    var run = function (q, token, more) {
      var url = "/v1/items?page_size=25&q=" + enc(q) + (token ? "&page_token=" + enc(token) : "");
      if (!more) loading(results, "results");
      return api.get(url).then(function (r) {
        if (!alive(gen)) return;
        if (!more) clear(results);
        var rows = r.items.map(function (it) {
          return [itemLink(it.id), it.title === null ? "—" : it.title,
                  it.artist === null ? "—" : it.artist, fmtNum(it.playlists)];
        });
        var tbody = results.querySelector("tbody");
        if (!tbody) {
          if (!rows.length) {
            results.appendChild(h("p", {class: "muted"}, q ? "No item starts with “" + q + "”." :
                                  "No items stored yet: upload playlists first."));
            return;
          }
          results.appendChild(table("Search results", ["Id", "Title", "Artist", "Playlists"], rows,
                                    "results"));
          tbody = results.querySelector("tbody");
        } else {
          rows.forEach(function (row) {
            var tr = tbody.insertRow();
            row.forEach(function (c) {
              var td = tr.insertCell();
              if (c && c.nodeType) td.appendChild(c); else td.textContent = c;
            });
          });
        }
        var old = results.querySelector(".more");
        if (old) old.remove();
        if (r.next_page_token) {
          results.appendChild(h("p", {class: "more"}, h("button", {type: "button", onclick: function () {
            run(q, r.next_page_token, true);
          }}, "More results")));
        }
        announce(tbody.rows.length + " items shown");
      }, function (e) {
        if (alive(gen)) clear(results).appendChild(problemBox(e, "GET /v1/items"));
      });
    };
    var go = function () {
      var q = input.value.trim();
      history.replaceState(null, "", "#/explore" + (q ? "?q=" + enc(q) : ""));
      run(q);
    };
    form.addEventListener("submit", function (ev) { ev.preventDefault(); clearTimeout(timer); go(); });
    input.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(go, 250);
    });
    run(input.value.trim());
    page.focus = input;
  }

  var SOURCES = [
    {key: "embedding", title: "Embedding · cosine", q: ""},
    {key: "dot", title: "Embedding · dot", q: "&metric=dot"},
    {key: "cooc", title: "Co-occurrence count", q: "&source=cooc"},
    {key: "pmi", title: "PMI score (cooc·pmi)", q: "&source=pmi"}
  ];

  function itemPage(main, parts, query, gen) {
    var id = parts[0] || "";
    var k = Math.max(1, Math.min(100, parseInt(query.get("k") || "10", 10) || 10));
    main.appendChild(h("p", {class: "crumbs"}, h("a", {href: "#/explore"}, "Explore"), " / ", id));
    var head = main.appendChild(h("h1", null, "Item " + id));
    var info = main.appendChild(h("div"));
    api.get("/v1/items/" + enc(id)).then(function (it) {
      if (!alive(gen)) return;
      head.textContent = (it.title || "Item " + it.id) + (it.artist ? " — " + it.artist : "");
      document.title = head.textContent + " · itemvecd";
      info.appendChild(h("p", {class: "muted"}, "Id ", h("code", null, it.id), " · in ",
                         fmtNum(it.playlists), " playlists"));
    }, function (e) { if (alive(gen)) info.appendChild(problemBox(e, "GET /v1/items/" + id)); });

    var kForm = h("form", {class: "inline filters"},
      h("label", {for: "k"}, "Neighbours per source "),
      h("input", {id: "k", type: "number", min: "1", max: "100", value: String(k)}),
      h("button", {type: "submit"}, "Show"));
    kForm.addEventListener("submit", function (ev) {
      ev.preventDefault();
      location.hash = "#/items/" + enc(id) + "?k=" + enc(kForm.k.value);
    });
    main.appendChild(kForm);
    var cols = main.appendChild(h("div", {class: "neighbours", id: "neighbours"}));
    SOURCES.forEach(function (src) {
      var col = h("section", {class: "card source", "data-source": src.key,
                              "aria-labelledby": "src-" + src.key},
                  h("h2", {id: "src-" + src.key}, src.title));
      var body = col.appendChild(h("div", null, h("p", {class: "muted"}, "Loading…")));
      cols.appendChild(col);
      api.get("/v1/items/" + enc(id) + "/similar?k=" + k + src.q).then(function (r) {
        if (!alive(gen)) return;
        clear(body);
        if (r.model || r.job) {
          body.appendChild(h("p", {class: "hint"}, r.model ? "model " + r.model : "pmi job " + r.job));
        }
        body.appendChild(h("ol", {class: "nlist"}, r.neighbors.map(neighbourItem)));
        if (!r.neighbors.length) body.appendChild(h("p", {class: "muted"}, "No neighbours."));
      }, function (e) { if (alive(gen)) clear(body).appendChild(problemBox(e)); });
    });

    var co = main.appendChild(section("Top co-occurrences", "card wide"));
    var coBody = co.appendChild(h("div"));
    api.get("/v1/items/" + enc(id) + "/cooccurrences?k=" + k).then(function (r) {
      if (!alive(gen)) return;
      if (!r.in_matrix) {
        coBody.appendChild(h("p", {class: "muted"}, "Not in PMI job " + r.job +
                             "'s matrix (dropped by min_item_frequency or max_group_size)."));
        return;
      }
      coBody.appendChild(h("p", {class: "hint"}, "pmi job " + r.job));
      coBody.appendChild(table("Top co-occurrences",
        ["Item", "Title", "Artist", "Together", "Its playlists", "PMI", "Score"],
        r.pairs.map(function (p) {
          return [itemLink(p.item2), p.title || "—", p.artist || "—", fmtNum(p.cooc),
                  fmtNum(p.freq2), fmtScore(p.pmi), fmtScore(p.score)];
        })));
    }, function (e) { if (alive(gen)) coBody.appendChild(problemBox(e)); });

    main.appendChild(continuationBox(id));
  }

  function continuationBox(id) {
    var s = section("Playlist continuation", "card wide");
    var ta = h("textarea", {id: "playlist-items", rows: "4", spellcheck: "false",
                            "aria-describedby": "playlist-hint"});
    if (id && playlist.indexOf(id) < 0) playlist.push(id);
    ta.value = playlist.join("\n");
    var kIn = h("input", {id: "rec-k", type: "number", min: "1", max: "100", value: "10"});
    var out = h("div", {id: "recommend-out"});
    var form = h("form", {class: "stack"},
      h("label", {for: "playlist-items"}, "Items of the playlist, one id a line"), ta,
      h("p", {id: "playlist-hint", class: "hint"},
        "Each item page you visit is added. POST /v1/recommend scores every item by cosine " +
        "with the sum of the inputs' normalised vectors."),
      h("div", {class: "inline"}, h("label", {for: "rec-k"}, "k "), kIn,
        h("button", {type: "submit", class: "primary"}, "Continue the playlist"),
        h("button", {type: "button", onclick: function () { playlist = []; ta.value = ""; }}, "Clear")),
      out);
    form.addEventListener("submit", function (ev) {
      ev.preventDefault();
      playlist = ta.value.split("\n").map(function (x) { return x.trim(); }).filter(Boolean);
      clear(out);
      if (!playlist.length) {
        out.appendChild(problemBox({problem: {title: "No items", detail: "enter at least one item id"}}));
        return;
      }
      api.post("/v1/recommend", {items: playlist, k: parseInt(kIn.value, 10) || 10}).then(function (r) {
        if (r.unknown_items && r.unknown_items.length)
          out.appendChild(h("p", {class: "hint"}, "Not in the model (ignored): " + r.unknown_items.join(", ")));
        out.appendChild(h("ol", {class: "nlist"}, r.neighbors.map(neighbourItem)));
        announce(r.neighbors.length + " items recommended");
      }, function (e) { out.appendChild(problemBox(e, "POST /v1/recommend")); });
    });
    s.appendChild(form);
    return s;
  }

  /* ---------- Upload ---------- */

  var FORMATS = [
    ["", "by file name (.tsv .csv .ndjson .jsonl .json, .gz)"],
    ["text/tab-separated-values", "TSV"], ["text/csv", "CSV"],
    ["application/x-ndjson", "NDJSON"], ["application/json", "JSON"]
  ];

  function typeOf(name) {
    var n = name.toLowerCase().replace(/\.gz$/, "");
    if (/\.(tsv|tab|txt)$/.test(n)) return "text/tab-separated-values";
    if (/\.csv$/.test(n)) return "text/csv";
    if (/\.(ndjson|jsonl)$/.test(n)) return "application/x-ndjson";
    if (/\.json$/.test(n)) return "application/json";
    return null;
  }

  function uploadPage(main) {
    main.appendChild(h("h1", null, "Upload playlists"));
    var input = h("input", {id: "file", type: "file", class: "visually-hidden",
                            accept: ".tsv,.csv,.ndjson,.jsonl,.json,.gz,.txt"});
    var fmt = h("select", {id: "format"}, FORMATS.map(function (f) {
      return h("option", {value: f[0]}, f[1]);
    }));
    var drop = h("div", {class: "dropzone", id: "dropzone", tabindex: "0", role: "button",
                         "aria-describedby": "drop-hint"},
      h("p", {class: "drop-title"}, "Drop a playlist file here, or press Enter to choose one"),
      h("p", {id: "drop-hint", class: "hint"},
        "TSV or CSV with a header (playlist_id, item_id, optional title, artist), NDJSON or " +
        "JSON playlists; gzip is detected. One transaction: all rows are stored, or none."));
    var out = h("div", {id: "upload-out", "aria-live": "polite"});
    main.appendChild(h("div", {class: "stack"}, drop, input,
      h("label", {for: "format"}, "Format"), fmt, out));
    var pick = function () { input.click(); };
    drop.addEventListener("click", pick);
    drop.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); pick(); }
    });
    ["dragenter", "dragover"].forEach(function (t) {
      drop.addEventListener(t, function (ev) { ev.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      drop.addEventListener(t, function () { drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (ev) {
      ev.preventDefault();
      if (ev.dataTransfer.files.length) upload(ev.dataTransfer.files[0], fmt.value, out);
    });
    input.addEventListener("change", function () {
      if (input.files.length) upload(input.files[0], fmt.value, out);
      input.value = "";
    });
  }

  function upload(file, chosen, out) {
    clear(out);
    var type = chosen || typeOf(file.name);
    if (!type) {
      out.appendChild(problemBox({problem: {title: "Unknown format", detail: "cannot tell the " +
        "format of “" + file.name + "” from its name: choose one in Format"}}));
      return;
    }
    file.slice(0, 2).arrayBuffer().then(function (head) {
      var b = new Uint8Array(head);
      var gz = b.length === 2 && b[0] === 0x1f && b[1] === 0x8b;
      var bar = h("progress", {max: "1", value: "0", "aria-label": "upload progress"});
      out.appendChild(h("p", null, "Uploading " + file.name + " (" + fmtBytes(file.size) + ", " +
                        type + (gz ? ", gzip" : "") + ") ", bar));
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/playlists");
      var hd = api.headers({"Content-Type": type});
      if (gz) hd["Content-Encoding"] = "gzip";
      for (var k in hd) xhr.setRequestHeader(k, hd[k]);
      xhr.upload.onprogress = function (ev) { if (ev.lengthComputable) bar.value = ev.loaded / ev.total; };
      xhr.onerror = function () {
        clear(out).appendChild(problemBox({problem: {title: "Network error", detail: "the upload did not complete"}}));
      };
      xhr.onload = function () {
        clear(out);
        var data = null;
        try { data = JSON.parse(xhr.responseText); } catch (e) { data = xhr.responseText; }
        if (xhr.status === 200) {
          announce("Upload stored " + data.rows_stored + " rows");
          out.appendChild(h("div", {class: "ok", role: "status"},
            h("p", null, h("strong", null, "Stored. "), file.name),
            kv([["Playlists", fmtNum(data.playlists)], ["Rows received", fmtNum(data.rows_received)],
                ["Rows stored (new)", fmtNum(data.rows_stored)],
                ["Rows already stored", fmtNum(data.rows_duplicate)],
                ["Rows skipped", fmtNum(data.rows_skipped)],
                ["… missing title", fmtNum(data.skipped && data.skipped.missing_title)],
                ["… item id ≤ 0", fmtNum(data.skipped && data.skipped.non_positive_id)]])));
          return;
        }
        var err = apiError(xhr.status, data, !!api.token());
        out.appendChild(problemBox(err, "nothing was stored"));
        if (err.problem.line && !gz) showLine(file, err.problem.line, err.problem.column, out);
      };
      xhr.send(file);
    });
  }

  // Shows the line an upload error points at, with a caret under the
  // column (columns count bytes, as the parser does).
  function showLine(file, line, column, out) {
    if (file.size > 64 * 1024 * 1024) return;
    file.arrayBuffer().then(function (buf) {
      var bytes = new Uint8Array(buf), start = 0, n = 1;
      for (var i = 0; i < bytes.length && n < line; i++) if (bytes[i] === 10) { n++; start = i + 1; }
      if (n !== line) return;
      var end = start;
      while (end < bytes.length && bytes[end] !== 10 && end - start < 400) end++;
      var dec = new TextDecoder("utf-8", {fatal: false});
      var text = dec.decode(bytes.subarray(start, end)).replace(/\r$/, "");
      var before = column ? dec.decode(bytes.subarray(start, Math.min(end, start + column - 1))) : "";
      var caret = before.replace(/[^\t]/g, " ") + "^";
      out.appendChild(h("figure", {class: "source-line"},
        h("figcaption", null, "Line " + line + (column ? ", column " + column : "") + " of " + file.name),
        h("pre", null, h("code", null, text + "\n" + caret))));
    });
  }

  function notFoundPage(main) {
    main.appendChild(h("h1", null, "Not found"));
    main.appendChild(h("p", null, "No such page. ", h("a", {href: "#/"}, "Go to the overview")));
  }

  /* ---------- start ---------- */

  document.addEventListener("DOMContentLoaded", function () {
    initTokenDialog();
    window.addEventListener("hashchange", render);
    render();
  });
  // for the browser test and curious people: the parsers, without the DOM
  window.IVDashboard = {parseMetrics: parseMetrics, sampleOf: sampleOf, p99: p99};
})();
