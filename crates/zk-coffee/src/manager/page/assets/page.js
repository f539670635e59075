// The manager's page: one EventSource at /events carries everything (a `hello`, the shops'
// documents as they change, each event, each second's chart samples); nothing else is asked
// for after the first load. Read-only: nothing here sends anything to the manager.
"use strict";

(function () {
  const HISTORY = 15 * 60;
  const FEED = 100;
  const GONE = 50;

  const state = {
    ensemble: "",
    shops: {},      // name -> the shop-status document
    history: {},    // name -> [[second, served, waiting, p50, p95, p99], ...]
    events: [],     // newest last, at most FEED
    gone: {},       // shop -> barista -> {state: "lost"|"left", time}
    selected: null, // the shop shown, or null for the overview
  };
  // For tests and the benchmark: how many messages were applied, and the last one's cost.
  const page = { state, applied: 0, lastApplyMs: 0, maxApplyMs: 0, connection: "connecting", charts: {} };
  window.zkCoffeePage = page;

  const $ = (id) => document.getElementById(id);

  function cell(row, text, numeric) {
    const td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : String(text);
    if (numeric) td.className = "n";
    row.appendChild(td);
    return td;
  }

  function fill(tbody, rows) {
    const fragment = document.createDocumentFragment();
    for (const row of rows) fragment.appendChild(row);
    tbody.replaceChildren(fragment);
  }

  function seconds(ms) {
    return ms === null || ms === undefined ? "" : (ms / 1000).toFixed(1);
  }

  function sum(counts) {
    return Object.values(counts || {}).reduce((a, b) => a + b, 0);
  }

  function waiting(shop) {
    return shop.on_shift.reduce((n, b) => n + b.queue.orders, 0) + shop.orphans.reduce((n, o) => n + o.queue.orders, 0);
  }

  function oldest(shop) {
    const ages = shop.on_shift.map((b) => b.queue.oldest_ms).concat(shop.orphans.map((o) => o.queue.oldest_ms));
    const known = ages.filter((a) => a !== null && a !== undefined);
    return known.length ? Math.max(...known) : null;
  }

  function setConnection(what) {
    page.connection = what;
    const badge = $("connection");
    badge.dataset.state = what;
    badge.textContent = { live: "live", reconnecting: "reconnecting…", connecting: "connecting…" }[what];
  }

  // ---- the views ----

  function renderOverview() {
    const names = Object.keys(state.shops).sort();
    let onShift = 0, wait = 0, orphans = 0, sold = 0;
    const coffees = {};
    const rows = names.map((name) => {
      const shop = state.shops[name];
      const tr = document.createElement("tr");
      tr.dataset.shop = name;
      const th = document.createElement("th");
      th.scope = "row";
      const a = document.createElement("a");
      a.href = "#shop=" + encodeURIComponent(name);
      a.textContent = name;
      th.appendChild(a);
      tr.appendChild(th);
      const w = waiting(shop);
      cell(tr, shop.on_shift.length, true);
      cell(tr, w, true);
      cell(tr, shop.orphans.length, true);
      cell(tr, shop.sales.total, true);
      onShift += shop.on_shift.length; wait += w; orphans += shop.orphans.length; sold += shop.sales.total;
      for (const [coffee, n] of Object.entries(shop.sales.per_coffee)) coffees[coffee] = (coffees[coffee] || 0) + n;
      return tr;
    });
    fill($("overview-table").tBodies[0], rows);
    $("total-on-shift").textContent = onShift;
    $("total-waiting").textContent = wait;
    $("total-orphans").textContent = orphans;
    $("total-sold").textContent = sold;
    fill($("overview-coffees").tBodies[0], Object.keys(coffees).sort().map((coffee) => {
      const tr = document.createElement("tr");
      cell(tr, coffee);
      cell(tr, coffees[coffee], true);
      return tr;
    }));
  }

  function renderShop(name) {
    const shop = state.shops[name];
    if (!shop) return;
    $("shop-name").textContent = name === "/" ? "The shop (/)" : "Shop " + name;
    const served = shop.sales.per_barista;
    $("on-shift-count").textContent = shop.on_shift.length;
    $("waiting-count").textContent = waiting(shop);
    const age = oldest(shop);
    $("oldest-age").textContent = age === null ? "–" : seconds(age) + " s";
    $("served-total").textContent = shop.sales.total;

    const onShift = new Set(shop.on_shift.map((b) => b.name));
    const rows = shop.on_shift.map((b) => {
      const tr = document.createElement("tr");
      tr.dataset.barista = b.name;
      const f = b.facts;
      const busy = b.queue.orders > 0;
      tr.dataset.state = busy ? "brewing" : "idle";
      cell(tr, b.name);
      cell(tr, f ? f.host : "");
      cell(tr, f ? f.pid : "", true);
      cell(tr, f ? f.version : "");
      cell(tr, f ? new Date(f.started * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "");
      cell(tr, f ? f.brew_ms : "", true);
      cell(tr, b.queue.orders, true);
      cell(tr, seconds(b.queue.oldest_ms), true);
      cell(tr, sum(served[b.name]), true);
      cell(tr, busy ? "brewing" : "idle");
      return tr;
    });
    const gone = state.gone[name] || {};
    for (const barista of Object.keys(gone).sort()) {
      if (onShift.has(barista)) continue;
      const tr = document.createElement("tr");
      tr.dataset.barista = barista;
      tr.dataset.state = gone[barista].state;
      cell(tr, barista);
      for (let i = 0; i < 7; i++) cell(tr, "", i === 1 || i === 4 || i === 5 || i === 6);
      cell(tr, sum(served[barista]), true);
      cell(tr, gone[barista].state + " at " + gone[barista].time.slice(11, 19));
      rows.push(tr);
    }
    fill($("baristas").tBodies[0], rows);

    fill($("orphans").tBodies[0], shop.orphans.map((o) => {
      const tr = document.createElement("tr");
      tr.dataset.orphan = o.owner;
      tr.dataset.adopter = o.adopter || "";
      cell(tr, o.owner);
      cell(tr, o.queue.orders, true);
      cell(tr, seconds(o.queue.oldest_ms), true);
      cell(tr, o.adopter || "nobody yet");
      return tr;
    }));

    fill($("sales-coffee").tBodies[0], Object.keys(shop.sales.per_coffee).sort().map((coffee) => {
      const tr = document.createElement("tr");
      cell(tr, coffee);
      cell(tr, shop.sales.per_coffee[coffee], true);
      return tr;
    }));
    fill($("sales-barista").tBodies[0], Object.keys(served).sort().map((barista) => {
      const tr = document.createElement("tr");
      cell(tr, barista);
      cell(tr, sum(served[barista]), true);
      return tr;
    }));
  }

  function renderFeed() {
    fill($("feed"), state.events.slice().reverse().filter((e) => state.selected === null || e.shop === state.selected).map((e) => {
      const li = document.createElement("li");
      li.dataset.kind = e.event;
      if (e.barista) li.dataset.barista = e.barista;
      const time = document.createElement("time");
      time.dateTime = e.time;
      time.textContent = e.time.slice(11, 23);
      const kind = document.createElement("span");
      kind.className = "kind";
      kind.textContent = e.event;
      li.append(time, kind);
      const facts = Object.entries(e).filter(([k]) => !["time", "event", "key"].includes(k));
      li.append(" " + facts.map(([k, v]) => k + "=" + (typeof v === "string" ? v : JSON.stringify(v))).join(" "));
      return li;
    }));
  }

  // ---- the charts ----

  function chartData(name) {
    const samples = state.history[name] || [];
    const col = (i) => samples.map((s) => s[i]);
    return { served: [col(0), col(1)], waits: [col(0), col(3), col(4), col(5)] };
  }

  function chartWidth(id) {
    return Math.max(260, $(id).clientWidth || 300);
  }

  function makeCharts() {
    for (const chart of Object.values(page.charts)) chart.destroy();
    page.charts = {};
    if (state.selected === null || typeof uPlot === "undefined") return;
    const data = chartData(state.selected);
    const axes = [{ stroke: "#1a1a1a" }, { stroke: "#1a1a1a" }];
    page.charts.served = new uPlot({
      width: chartWidth("chart-served"), height: 200, axes,
      series: [{}, { label: "served/s", stroke: "#6b3e26", fill: "rgba(107,62,38,.15)" }],
    }, data.served, $("chart-served"));
    page.charts.waits = new uPlot({
      width: chartWidth("chart-waits"), height: 200, axes,
      series: [{}, { label: "p50", stroke: "#1b6e20" }, { label: "p95", stroke: "#b36b00" }, { label: "p99", stroke: "#a4161a" }],
    }, data.waits, $("chart-waits"));
  }

  function updateCharts() {
    if (state.selected === null || !page.charts.served) return;
    const data = chartData(state.selected);
    page.charts.served.setData(data.served);
    page.charts.waits.setData(data.waits);
  }

  window.addEventListener("resize", () => {
    if (page.charts.served) page.charts.served.setSize({ width: chartWidth("chart-served"), height: 200 });
    if (page.charts.waits) page.charts.waits.setSize({ width: chartWidth("chart-waits"), height: 200 });
  });

  // ---- which view ----

  function choose() {
    const names = Object.keys(state.shops);
    const match = location.hash.match(/^#shop=(.*)$/);
    let selected = match ? decodeURIComponent(match[1]) : null;
    if (selected === null && names.length === 1) selected = names[0];
    const several = names.length > 1;
    const changed = selected !== state.selected;
    state.selected = selected;
    $("overview").hidden = selected !== null;
    $("shop").hidden = selected === null;
    $("crumbs").hidden = !(several && selected !== null);
    if (changed) makeCharts();
  }

  function render() {
    choose();
    if (state.selected === null) renderOverview(); else renderShop(state.selected);
    renderFeed();
  }

  window.addEventListener("hashchange", render);

  // ---- what the stream says ----

  function noteEvent(e) {
    state.events.push(e);
    if (state.events.length > FEED) state.events.splice(0, state.events.length - FEED);
    const gone = (state.gone[e.shop] = state.gone[e.shop] || {});
    if (e.barista && (e.event === "barista-lost" || e.event === "barista-left")) {
      gone[e.barista] = { state: e.event === "barista-lost" ? "lost" : "left", time: e.time };
      const names = Object.keys(gone);
      if (names.length > GONE) delete gone[names.sort((a, b) => gone[a].time.localeCompare(gone[b].time))[0]];
    } else if (e.barista && e.event === "barista-on-shift") {
      delete gone[e.barista];
    }
  }

  function addSamples(byShop) {
    for (const [name, samples] of Object.entries(byShop)) {
      const kept = (state.history[name] = state.history[name] || []);
      const last = kept.length ? kept[kept.length - 1][0] : 0;
      for (const s of samples) if (s[0] > last) kept.push(s);
      if (kept.length > HISTORY) kept.splice(0, kept.length - HISTORY);
    }
  }

  // The stream's listeners call page.handlers[what], so the tests can replay a message through
  // it and the benchmark can time every real one.
  page.handlers = {};
  function applying(what, apply) {
    page.handlers[what] = (message) => {
      const start = performance.now();
      apply(JSON.parse(message.data));
      if (what === "samples") updateCharts(); else render();
      const took = performance.now() - start;
      page.applied += 1;
      page.lastApplyMs = took;
      page.maxApplyMs = Math.max(page.maxApplyMs, took);
    };
    return (message) => page.handlers[what](message);
  }

  let source = null;
  function connect() {
    source = new EventSource("/events");
    source.onopen = () => setConnection("live");
    source.onerror = () => {
      setConnection("reconnecting");
      // EventSource retries by itself, unless the answer was not a stream at all (a 503
      // with every stream slot taken): then try again, once, a little later.
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(connect, 2000);
      }
    };
    // The manager ends a stream that fell behind, or as it stops: start afresh.
    source.addEventListener("bye", () => {
      source.close();
      setConnection("reconnecting");
      setTimeout(connect, 1000);
    });
    source.addEventListener("hello", applying("hello", (hello) => {
      state.ensemble = hello.ensemble;
      $("ensemble").textContent = hello.ensemble;
      state.history = {};
      addSamples(hello.history);
      state.events = [];
      state.gone = {};
      for (const e of hello.recent_events) noteEvent(e);
      makeCharts();
    }));
    source.addEventListener("shops", applying("shops", (doc) => {
      state.shops = doc.shops;
    }));
    source.addEventListener("event", applying("event", noteEvent));
    source.addEventListener("samples", applying("samples", addSamples));
  }
  connect();
})();
