// The order pipeline console: live over server-sent events (GET /events,
// read with fetch so that it can carry the token), control over fetch, with
// the bearer token kept for this tab only.
"use strict";

(function () {
  const TOKEN_KEY = "order-pipeline.token";
  const STALE_MS = 5000;
  const RECONNECT_MS = 2000;
  const SVG = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);
  const integers = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
  const decimals = new Intl.NumberFormat("en-US", { maximumFractionDigits: 1 });

  // --- formatting: numbers right-aligned in the markup, grouped here ------

  function int(n) {
    return n === null || n === undefined ? "—" : integers.format(n);
  }

  // Money stays the API's decimal string: digits and decimals untouched,
  // only the whole part grouped by thousands (never through a float).
  function money(text) {
    if (text === null || text === undefined) return "—";
    const negative = text.startsWith("-");
    const [whole, fraction] = text.replace(/^-/, "").split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (negative ? "-" : "") + grouped + (fraction === undefined ? "" : "." + fraction);
  }

  function milliseconds(ms) {
    if (ms === null || ms === undefined) return "—";
    if (ms >= 1000) return decimals.format(ms / 1000) + " s";
    return decimals.format(ms) + " ms";
  }

  function clock(iso) {
    return iso ? new Date(iso).toLocaleTimeString() : "—";
  }

  function ago(iso, now) {
    if (!iso) return "before ids were kept";
    const seconds = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
    if (seconds < 60) return seconds + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    if (seconds < 86400) return Math.floor(seconds / 3600) + " h ago";
    return Math.floor(seconds / 86400) + " d ago";
  }

  function setText(id, text) {
    const element = $(id);
    if (element.textContent !== text) element.textContent = text;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  // A success fades after a while (the panel itself shows the state); a
  // refusal stays until the next action.
  const fading = {};
  function say(id, text, kind) {
    const element = $(id);
    element.textContent = text;
    element.dataset.kind = kind;
    clearTimeout(fading[id]);
    if (kind === "ok") {
      fading[id] = setTimeout(() => {
        element.textContent = "";
        element.dataset.kind = "";
      }, 6000);
    }
  }

  // --- the token: typed once, kept in sessionStorage for this tab ---------

  function token() {
    return sessionStorage.getItem(TOKEN_KEY);
  }

  function showToken() {
    const kept = Boolean(token());
    $("token-form").hidden = kept;
    $("token-set").hidden = !kept;
  }

  // A new token (or none) reopens the stream with it.
  function tokenChanged() {
    showToken();
    restartStream();
  }

  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const value = $("token").value.trim();
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    $("token").value = "";
    tokenChanged();
  });
  $("token-forget").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    tokenChanged();
  });

  // POST with the token; a refusal is put in words in `messageId`.
  async function control(path, body, messageId) {
    if (!token()) {
      say(messageId, "Enter the control token first (make run prints it).", "error");
      return null;
    }
    const options = { method: "POST", headers: { Authorization: "Bearer " + token() } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      // A string is sent as it is: JSON written by the caller.
      options.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, options);
    } catch (error) {
      say(messageId, "The gateway did not answer: " + error.message, "error");
      return null;
    }
    let answer = null;
    try {
      answer = await response.json();
    } catch (error) {
      answer = null;
    }
    if (response.ok) return answer;
    const detail = answer && answer.message ? answer.message : response.statusText;
    const words = {
      401: "The gateway refused the token (401 Unauthorized): ",
      403: "The gateway does not allow this (403 Forbidden): ",
      409: "Already done, or someone else is on it (409): ",
      429: "Too many refused tokens from here; wait a moment (429): ",
      503: "A service is not available (503): ",
    };
    say(messageId, (words[response.status] || `Refused (${response.status}): `) + detail, "error");
    return null;
  }

  // --- generator ------------------------------------------------------------

  function showGenerator(generator, state) {
    const panel = $("generator-panel");
    const running = generator.running;
    panel.dataset.running = running === null ? "unknown" : String(running);
    let label = running ? "RUNNING" : "STOPPED";
    if (running === null) label = state === "up" ? "—" : "UNREACHABLE";
    setText("generator-state", label);
    setText(
      "generator-interval",
      generator.interval_seconds === null ? "—" : decimals.format(generator.interval_seconds) + " s",
    );
    setText("generator-created", int(generator.orders_created));
    $("alarm-stopped").hidden = running !== false;
  }

  async function switchGenerator(path) {
    const status = await control(path, undefined, "generator-message");
    if (status) {
      showGenerator(status, "up");
      say("generator-message", path === "/start" ? "Generation started." : "Generation stopped.", "ok");
    }
  }
  $("start").addEventListener("click", () => switchGenerator("/start"));
  $("stop").addEventListener("click", () => switchGenerator("/stop"));

  // --- figures and services -------------------------------------------------

  function showFigures(figures) {
    setText("processed-total", int(figures.total_orders_processed));
    setText("average-price", money(figures.average_execution_price));
    setText("orders-created", int(figures.orders_created));
    setText("in-flight", int(figures.in_flight));
    setText("dead-lettered", int(figures.dead_lettered));
    document.querySelector(".figures").dataset.dead = String(figures.dead_lettered > 0);
  }

  function showServices(services) {
    for (const name of ["generator", "processor", "broker"]) {
      const element = $("svc-" + name);
      element.dataset.state = services[name];
      setText("svc-" + name, services[name]);
    }
    setText("svc-consumers", int(services.consumers));
    $("svc-consumers").classList.toggle("alert", services.consumers === 0);
    setText("svc-depth", int(services.queue_depth));
    setText("svc-outbox", int(services.outbox_backlog));
  }

  // --- charts: SVG drawn here, no library ------------------------------------

  const CHART = { width: 420, height: 160, left: 56, right: 6, top: 8, bottom: 20 };

  function svgElement(name, attributes, text) {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    return element;
  }

  function niceMax(value) {
    if (!(value > 0)) return 1;
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
    return 10 * power;
  }

  // series: [{values: [number|null], className}]; gaps are bridged.
  function drawChart(svg, series, format, fromZero) {
    const values = series.flatMap((s) => s.values).filter((v) => v !== null);
    svg.replaceChildren();
    const { width, height, left, right, top, bottom } = CHART;
    const plotWidth = width - left - right;
    const plotHeight = height - top - bottom;
    let low = fromZero ? 0 : Math.min(...values);
    let high = niceMax(Math.max(...values, 0));
    if (!fromZero && values.length) {
      high = Math.max(...values);
      const pad = (high - low) * 0.1 || Math.abs(high) * 0.01 || 1;
      low = Math.max(0, low - pad);
      high += pad;
    }
    for (let i = 0; i <= 2; i++) {
      const y = top + (plotHeight * i) / 2;
      svg.append(svgElement("line", { class: "grid", x1: left, x2: width - right, y1: y, y2: y }));
      const value = high - ((high - low) * i) / 2;
      svg.append(
        svgElement("text", { class: "axis", x: left - 6, y: y + 4, "text-anchor": "end" }, values.length ? format(value) : ""),
      );
    }
    const labels = [["−10 min", "start"], ["−5 min", "middle"], ["now", "end"]];
    labels.forEach(([label, anchor], i) => {
      const x = left + (plotWidth * i) / 2;
      svg.append(svgElement("text", { class: "axis", x, y: height - 4, "text-anchor": anchor }, label));
    });
    if (!values.length) {
      svg.append(
        svgElement("text", { class: "nodata", x: left + plotWidth / 2, y: top + plotHeight / 2, "text-anchor": "middle" }, "nothing in the last 10 minutes"),
      );
      return;
    }
    for (const { values: points, className } of series) {
      const coordinates = [];
      points.forEach((value, i) => {
        if (value === null) return;
        const x = left + (plotWidth * i) / Math.max(points.length - 1, 1);
        const y = top + plotHeight * (1 - (value - low) / (high - low || 1));
        coordinates.push(x.toFixed(1) + "," + y.toFixed(1));
      });
      svg.append(svgElement("polyline", { class: "line " + className, points: coordinates.join(" ") }));
      if (coordinates.length === 1) {
        const [x, y] = coordinates[0].split(",");
        svg.append(svgElement("circle", { class: "dot " + className, cx: x, cy: y, r: 3 }));
      }
    }
  }

  // Per-second counts as rates over 10-second buckets: a line that can be read.
  function rates(counts, bucket) {
    const out = [];
    for (let i = 0; i < counts.length; i += bucket) {
      const slice = counts.slice(i, i + bucket);
      out.push(slice.reduce((a, b) => a + b, 0) / slice.length);
    }
    return out;
  }

  // Average prices per second as 10-second averages, weighted by how many
  // orders each second had (for the line only: the figures stay decimal).
  function averagePrices(prices, counts, bucket) {
    const out = [];
    for (let i = 0; i < prices.length; i += bucket) {
      let sum = 0;
      let orders = 0;
      for (let j = i; j < Math.min(i + bucket, prices.length); j++) {
        if (prices[j] !== null) {
          sum += Number(prices[j]) * counts[j];
          orders += counts[j];
        }
      }
      out.push(orders ? sum / orders : null);
    }
    return out;
  }

  function showCharts(charts) {
    const perSecond = (v) => decimals.format(v) + "/s";
    drawChart(
      $("chart-throughput"),
      [
        { values: rates(charts.created, 10), className: "created" },
        { values: rates(charts.processed, 10), className: "processed" },
      ],
      perSecond,
      true,
    );
    drawChart(
      $("chart-latency"),
      [
        { values: charts.latency_p50_ms, className: "p50" },
        { values: charts.latency_p95_ms, className: "p95" },
      ],
      milliseconds,
      true,
    );
    const prices = averagePrices(charts.average_execution_price, charts.processed, 10);
    drawChart($("chart-price"), [{ values: prices, className: "price" }], (v) => integers.format(v), false);
  }

  // --- recent orders ------------------------------------------------------------

  function showRecent(orders, processorState) {
    const rows = orders.map((order) => {
      const tr = document.createElement("tr");
      tr.append(cell("#" + order.id), cell(clock(order.created_at)), cell(int(order.quantity), "num"));
      if (order.execution_price === null) {
        const words = processorState === "up" ? "not processed yet" : "processor unreachable";
        const pending = cell(words, "pending");
        pending.colSpan = 3;
        tr.append(pending);
      } else {
        tr.append(
          cell(money(order.unit_price), "num"),
          cell(money(order.execution_price), "num"),
          cell(milliseconds(order.latency_ms), "num"),
        );
      }
      return tr;
    });
    if (!rows.length) {
      const tr = document.createElement("tr");
      const empty = cell("no orders yet", "empty");
      empty.colSpan = 6;
      tr.append(empty);
      rows.push(tr);
    }
    $("recent-rows").replaceChildren(...rows);
  }

  // --- dead letters ------------------------------------------------------------------

  let listedIds = [];
  let listedSignature = "";

  // A discard is final: the first click arms the button, a second one within
  // five seconds acts.
  function armed(button) {
    if (button.classList.contains("armed")) return true;
    button.classList.add("armed");
    const label = button.textContent;
    button.textContent = "Sure? " + label;
    setTimeout(() => {
      button.classList.remove("armed");
      button.textContent = label;
    }, 5000);
    return false;
  }

  async function replay(ids) {
    const answer = await control("/dead-letters/replay", ids === null ? {} : { ids }, "dead-letter-message");
    if (answer) say("dead-letter-message", `Replayed ${int(answer.replayed)}.`, "ok");
  }

  async function discard(ids) {
    const answer = await control("/dead-letters/discard", { ids }, "dead-letter-message");
    if (answer) say("dead-letter-message", `Discarded ${int(answer.discarded)} for good.`, "ok");
  }

  function deadLetterRow(letter, now) {
    const tr = document.createElement("tr");
    tr.dataset.id = letter.id;
    const what = letter.order_id === null ? cell(letter.body, "body") : cell("order #" + letter.order_id);
    const when = cell(ago(letter.dead_lettered_at, now), "ago");
    if (letter.dead_lettered_at) when.title = new Date(letter.dead_lettered_at).toString();
    when.dataset.at = letter.dead_lettered_at || "";
    const actions = document.createElement("td");
    const box = document.createElement("div");
    box.className = "row-actions";
    const replayButton = document.createElement("button");
    replayButton.type = "button";
    replayButton.className = "replay";
    replayButton.textContent = "Replay";
    replayButton.addEventListener("click", () => replay([letter.id]));
    const discardButton = document.createElement("button");
    discardButton.type = "button";
    discardButton.className = "discard halt";
    discardButton.textContent = "Discard";
    discardButton.addEventListener("click", () => {
      if (armed(discardButton)) discard([letter.id]);
    });
    const inspectButton = document.createElement("button");
    inspectButton.type = "button";
    inspectButton.className = "inspect";
    inspectButton.textContent = "Inspect";
    inspectButton.dataset.id = letter.id; // triage.js opens it
    box.append(inspectButton, replayButton, discardButton);
    actions.append(box);
    tr.append(what, cell(letter.reason, "reason"), when, cell(int(letter.attempts), "num"), actions);
    return tr;
  }

  function showDeadLetters(deadLetters) {
    const panel = $("dead-letter-panel");
    const count = deadLetters.count;
    panel.dataset.count = count > 0 ? "some" : "none";
    setText("dead-letter-count", count === null ? "?" : int(count));
    $("alarm-dead").hidden = !(count > 0);
    setText("alarm-dead", int(count) + (count === 1 ? " dead letter" : " dead letters"));
    const now = Date.now();
    const items = deadLetters.items;
    const signature = deadLetters.state + "|" + items.map((letter) => letter.id).join(",");
    if (signature === listedSignature) {
      // The same list: only the "ago" column moves, buttons stay put.
      for (const td of $("dead-letter-rows").querySelectorAll("td.ago")) {
        td.textContent = ago(td.dataset.at || null, now);
      }
      return;
    }
    listedSignature = signature;
    listedIds = items.map((letter) => letter.id);
    // Someone acted, or letters came: triage.js reads the groups and the trail again.
    document.dispatchEvent(new CustomEvent("deadletterschanged"));
    const rows = items.map((letter) => deadLetterRow(letter, now));
    if (!rows.length) {
      const tr = document.createElement("tr");
      let words = "none: every order went through";
      if (deadLetters.state !== "up") words = count ? "the processor is down: it lists them once it is back" : "the processor is down";
      const empty = cell(words, "empty");
      empty.colSpan = 5;
      tr.append(empty);
      rows.push(tr);
    }
    if (count > items.length && items.length) {
      const tr = document.createElement("tr");
      const more = cell(`${int(count - items.length)} more not listed`, "empty");
      more.colSpan = 5;
      tr.append(more);
      rows.push(tr);
    }
    $("dead-letter-rows").replaceChildren(...rows);
  }

  $("replay-all").addEventListener("click", () => replay(null));
  $("discard-all").addEventListener("click", (event) => {
    if (listedIds.length && armed(event.currentTarget)) discard(listedIds.slice());
  });

  // --- instances and timing (GET /instances, GET /timing) ---------------------

  const SERVICES = { order_generator: "generator", order_processor: "processor", gateway: "gateway" };
  const twoDecimals = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

  function secondsAgo(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 60) return decimals.format(seconds) + " s ago";
    if (seconds < 3600) return Math.floor(seconds / 60) + " min ago";
    return Math.floor(seconds / 3600) + " h ago";
  }

  function emptyRow(words, columns) {
    const tr = document.createElement("tr");
    const empty = cell(words, "empty");
    empty.colSpan = columns;
    tr.append(empty);
    return tr;
  }

  function instanceRow(item) {
    const tr = document.createElement("tr");
    tr.dataset.instance = item.instance_id;
    tr.dataset.service = item.service;
    tr.dataset.state = item.state;
    const version = item.version + (item.commit ? " · " + item.commit.slice(0, 7) : "");
    const state = cell(item.state, "state");
    if (item.state === "stalled") {
      const waiting = (item.events_waiting || 0) + (item.queue_ready || 0);
      state.title = `no event taken for ${decimals.format(item.seconds_since_event)} s while ${int(waiting)} wait`;
    }
    tr.append(
      cell(SERVICES[item.service] || item.service),
      cell(item.host),
      cell(String(item.pid), "num"),
      cell(version),
      cell(clock(item.started_at)),
      cell(secondsAgo(item.seconds_since_seen), "num"),
      cell(`${int(item.workers_active)} / ${int(item.workers_max)}`, "num"),
      state,
    );
    return tr;
  }

  // The alarm says what needs a look first: a service with no instance
  // beating, then stalled processors, then silent instances.
  function instanceTrouble(services) {
    const gone = Object.keys(services).filter((name) => services[name].live + services[name].stalled === 0);
    if (gone.length) return "no " + gone.map((name) => SERVICES[name] || name).join(", no ");
    const stalled = Object.values(services).reduce((sum, counts) => sum + counts.stalled, 0);
    if (stalled) return stalled + (stalled === 1 ? " processor stalled" : " processors stalled");
    return "";
  }

  function showInstances(instances) {
    const panel = $("instances-panel");
    if (instances.state !== "up") {
      panel.dataset.trouble = "false";
      $("alarm-instances").hidden = true;
      setText("instances-summary", "unknown");
      $("instance-rows").replaceChildren(emptyRow("the processors keep this list: none answers", 8));
      return;
    }
    const services = instances.services;
    const summary = Object.keys(services).map((name) => {
      const counts = services[name];
      return `${SERVICES[name] || name} ${counts.live + counts.stalled}`;
    });
    const silent = Object.values(services).reduce((sum, counts) => sum + counts.silent, 0);
    if (silent) summary.push(`${silent} silent`);
    setText("instances-summary", summary.join(" · "));
    const trouble = instanceTrouble(services);
    panel.dataset.trouble = String(Boolean(trouble));
    $("alarm-instances").hidden = !trouble;
    setText("alarm-instances", trouble);
    const rows = instances.instances.map(instanceRow);
    $("instance-rows").replaceChildren(...(rows.length ? rows : [emptyRow("no heartbeat yet", 8)]));
  }

  function timingRow(label, figures, service) {
    const tr = document.createElement("tr");
    tr.dataset.service = service;
    tr.append(
      cell(label),
      cell(int(figures.processed), "num processed"),
      cell(twoDecimals.format(figures.throughput_per_second), "num"),
      cell(milliseconds(figures.processing_time_ms), "num"),
      cell(milliseconds(figures.critical_time_ms), "num"),
      cell(int(figures.retries), "num"),
    );
    tr.lastChild.title = twoDecimals.format(figures.retries_per_second) + " retries per second";
    return tr;
  }

  function showTiming(timing) {
    if (timing.state !== "up") {
      $("timing-rows").replaceChildren(emptyRow("the processor is unreachable", 6));
      return;
    }
    const rows = [];
    for (const [service, figures] of Object.entries(timing.services)) {
      rows.push(timingRow(SERVICES[service] || service, figures, service));
    }
    $("timing-rows").replaceChildren(...rows);
  }

  // --- the live stream -----------------------------------------------------------

  let lastSnapshotAt = 0;

  function render(snapshot) {
    lastSnapshotAt = Date.now();
    showGenerator(snapshot.generator, snapshot.services.generator);
    showFigures(snapshot.figures);
    showServices(snapshot.services);
    showCharts(snapshot.charts);
    showRecent(snapshot.recent_orders, snapshot.services.processor);
    showDeadLetters(snapshot.dead_letters);
    showInstances(snapshot.instances);
    showTiming(snapshot.timing);
    setText("updated-at", new Date(snapshot.at).toLocaleTimeString());
    setLive("live", "live");
  }

  function setLive(state, words) {
    const live = $("live");
    live.dataset.state = state;
    live.textContent = words;
  }

  // --- the live stream ------------------------------------------------------
  // GET /events is a server-sent event stream. EventSource cannot send an
  // Authorization header, which the stream needs when the gateway has a read
  // token (GATEWAY_READ_TOKEN), so it is read with fetch: one `snapshot`
  // event about every second.

  let stream = null; // the AbortController of the open stream
  let wakeStream = null; // ends the wait before the next attempt

  function restartStream() {
    if (stream) stream.abort();
    if (wakeStream) wakeStream();
  }

  function pause(ms) {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      wakeStream = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  // Each event of a text/event-stream body, as (name, data), as it arrives.
  async function readEvents(body, onEvent) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value.replace(/\r\n?/g, "\n");
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        let name = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line === "" || line.startsWith(":")) continue; // a comment: keep-alive
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let text = colon < 0 ? "" : line.slice(colon + 1);
          if (text.startsWith(" ")) text = text.slice(1);
          if (field === "event") name = text;
          else if (field === "data") data.push(text);
        }
        if (data.length) onEvent(name, data.join("\n"));
      }
    }
  }

  async function follow() {
    for (;;) {
      const controller = new AbortController();
      stream = controller;
      let wait = RECONNECT_MS;
      try {
        const headers = token() ? { Authorization: "Bearer " + token() } : {};
        const response = await fetch("/events", { headers, signal: controller.signal, cache: "no-store" });
        if (response.status === 401 || response.status === 403) {
          setLive("locked", token() ? "the token was refused: enter another" : "enter the token to see the pipeline");
          $("token-form").hidden = false;
          wait = 60000; // until the token changes
        } else if (!response.ok) {
          setLive("reconnecting", "reconnecting… (" + response.status + ")");
        } else {
          await readEvents(response.body, (name, data) => {
            if (name === "snapshot") render(JSON.parse(data));
          });
          setLive("reconnecting", "reconnecting…");
        }
      } catch (error) {
        if (!controller.signal.aborted) setLive("reconnecting", "reconnecting…");
        else wait = 0;
      }
      await pause(wait);
    }
  }

  // What triage.js (the failure groups, the inspector, the audit trail) uses.
  window.orderConsole = { token, control, say, int, ago, clock, cell, armed };

  follow();
  setInterval(() => {
    const state = $("live").dataset.state;
    if (lastSnapshotAt && Date.now() - lastSnapshotAt > STALE_MS && state !== "reconnecting" && state !== "locked") {
      setLive("stale", "no update for " + Math.round((Date.now() - lastSnapshotAt) / 1000) + " s");
    }
  }, 1000);

  showToken();
})();
