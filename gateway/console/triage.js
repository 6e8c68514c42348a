// Failure triage in the console: the dead letters grouped by cause (replay
// or discard a whole group), one dead letter inspected and edited, and the
// audit trail. Read with fetch (with the tab's token, if any) when the
// dead letters change, after each action, and every 10 s; acts through
// console.js's `control`, which puts a refusal in words.
"use strict";

(function () {
  const kit = window.orderConsole;
  const $ = (id) => document.getElementById(id);
  const REFRESH_MS = 10000;
  const AUDIT_PAGE = 10;
  const percent = new Intl.NumberFormat("en-US", { style: "percent", maximumFractionDigits: 1 });

  // GET with the token when there is one; null if refused or unreachable.
  async function read(path) {
    const headers = kit.token() ? { Authorization: "Bearer " + kit.token() } : {};
    try {
      const response = await fetch(path, { headers, cache: "no-store" });
      return response.ok ? await response.json() : null;
    } catch (error) {
      return null;
    }
  }

  function button(text, className, onClick) {
    const element = document.createElement("button");
    element.type = "button";
    element.className = className;
    element.textContent = text;
    element.addEventListener("click", onClick);
    return element;
  }

  function emptyRow(tbody, columns, words) {
    const tr = document.createElement("tr");
    const td = kit.cell(words, "empty");
    td.colSpan = columns;
    tr.append(td);
    tbody.replaceChildren(tr);
  }

  function what(letter) {
    return letter.order_id === null ? letter.body : "order #" + letter.order_id;
  }

  // --- failure groups --------------------------------------------------------

  let groupsShown = "";
  const causes = {}; // group -> "Type: cause", for the audit trail's words

  async function loadGroups() {
    const answer = await read("/dead-letters/groups");
    if (!answer) return;
    for (const group of answer.groups) causes[group.group] = group.error_type + ": " + group.cause;
    $("group-panel").dataset.count = answer.count > 0 ? "some" : "none";
    $("group-count").textContent = kit.int(answer.count);
    const created = answer.orders_created_recently;
    $("group-recent").textContent =
      created === null ? "" : `recent: the last ${answer.recent_seconds / 60} min, ${kit.int(created)} orders created`;
    const now = Date.now();
    // The rows (and their buttons) are drawn again only when the groups
    // change; the figures that move with time are updated in place, so a
    // button does not go from under the pointer.
    const signature = answer.groups.map((g) => `${g.group}:${g.count}:${g.example.id}`).join(",");
    if (signature === groupsShown) {
      for (const group of answer.groups) {
        const row = $("group-rows").querySelector(`tr[data-group="${group.group}"]`);
        if (row) fillFigures(row, group, now);
      }
      return;
    }
    groupsShown = signature;
    if (!answer.groups.length) {
      emptyRow($("group-rows"), 6, "none: no dead letter is parked");
      return;
    }
    $("group-rows").replaceChildren(...answer.groups.map((group) => groupRow(group, now)));
  }

  function fillFigures(row, group, now) {
    const seen = row.querySelector("td.seen");
    seen.textContent = kit.ago(group.first_seen, now) + " / " + kit.ago(group.last_seen, now);
    seen.title = new Date(group.first_seen).toString() + " / " + new Date(group.last_seen).toString();
    const share = group.recent_share === null ? "—" : percent.format(group.recent_share);
    row.querySelector("td.recent").textContent = `${kit.int(group.recent_orders)} (${share})`;
  }

  function groupRow(group, now) {
    const tr = document.createElement("tr");
    tr.dataset.group = group.group;
    const cause = document.createElement("td");
    cause.className = "cause";
    const type = document.createElement("strong");
    type.textContent = group.error_type;
    const frame = document.createElement("small");
    frame.textContent = group.frame || "where unknown";
    cause.append(type, ": " + group.cause, document.createElement("br"), frame);
    const seen = kit.cell("", "seen");
    const recent = kit.cell("", "num recent");
    recent.title = "distinct orders with a dead letter of this group set aside in the last 10 minutes, and their share of the orders created then";
    const example = kit.cell(what(group.example), "example");
    const actions = document.createElement("td");
    const box = document.createElement("div");
    box.className = "row-actions";
    const discard = button("Discard group", "discard-group halt", () => {
      if (kit.armed(discard)) act(group, "discard");
    });
    box.append(
      button("Inspect example", "inspect-example", () => inspect(group.example.id)),
      button("Replay group", "replay-group", () => act(group, "replay")),
      discard,
    );
    actions.append(box);
    tr.append(cause, kit.cell(kit.int(group.count), "num count"), seen, recent, example, actions);
    fillFigures(tr, group, now);
    return tr;
  }

  async function act(group, action) {
    const answer = await kit.control(`/dead-letters/groups/${group.group}/${action}`, undefined, "group-message");
    if (!answer) return refresh();
    const done = action === "replay" ? `Replayed ${kit.int(answer.replayed)}` : `Discarded ${kit.int(answer.discarded)} for good`;
    const left = answer.left ? `; ${kit.int(answer.left)} still in the group (act again for more)` : "";
    kit.say("group-message", `${done} of ${group.error_type}: ${group.cause}${left}.`, "ok");
    refresh();
  }

  // --- one dead letter ---------------------------------------------------------

  let inspected = null;

  function fact(name, value) {
    const div = document.createElement("div");
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value === null || value === undefined ? "—" : String(value);
    div.append(dt, dd);
    return div;
  }

  async function inspect(id) {
    const letter = await read("/dead-letters/" + id);
    if (!letter) {
      kit.say("group-message", "The dead letter could not be read (gone, or the processor is down).", "error");
      return;
    }
    inspected = letter;
    $("inspector").hidden = false;
    $("inspect-id").textContent = letter.id;
    $("inspect-state").textContent = letter.state;
    $("inspect-state").dataset.state = letter.state;
    const time = (iso) => (iso ? new Date(iso).toLocaleString() : null);
    $("inspect-facts").replaceChildren(
      fact("Order", letter.order_id),
      fact("Trace id", letter.trace_id),
      fact("Attempts", letter.attempts),
      fact("First failure", time(letter.first_failed_at)),
      fact("Last failure", time(letter.last_failed_at)),
      fact("Set aside", time(letter.dead_lettered_at)),
      fact("Reason", letter.reason),
      fact("Group", causes[letter.group] || letter.cause),
      ...(letter.edited_from ? [fact("Edit of", letter.edited_from)] : []),
      ...(letter.edited_as ? [fact("Sent as message", letter.edited_as)] : []),
      ...(letter.resolved_at ? [fact("Resolved", time(letter.resolved_at))] : []),
    );
    $("inspect-body").textContent = letter.body;
    const rows = letter.failures.map((failure, index) => {
      const tr = document.createElement("tr");
      tr.append(
        kit.cell(String(index + 1), "num"),
        kit.cell(time(failure.at) || failure.at),
        kit.cell(failure.error_type + ": " + failure.message, "reason"),
        kit.cell(failure.frame || "—", "frame"),
      );
      return tr;
    });
    if (rows.length) $("inspect-failures").replaceChildren(...rows);
    else emptyRow($("inspect-failures"), 4, "no history recorded");
    $("edit-form").hidden = letter.state !== "parked";
    $("edit-order-id").value = letter.order_id === null ? "" : String(letter.order_id);
    kit.say("inspect-message", "", "");
    $("inspector").scrollIntoView({ block: "nearest" });
  }

  // The payload is written as JSON here: digits go as a number (never
  // through a float), anything else as a string, for the contract to refuse.
  function payload(text) {
    const value = text.trim();
    const orderId = /^[0-9]{1,19}$/.test(value) ? value : JSON.stringify(value);
    return `{"payload": {"order_id": ${orderId}}}`;
  }

  $("edit-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!inspected) return;
    const id = inspected.id;
    const answer = await kit.control(`/dead-letters/${id}/edit`, payload($("edit-order-id").value), "inspect-message");
    if (answer) {
      await inspect(id); // shows it resolved, and its new message
      kit.say("inspect-message", `Sent ${JSON.stringify(answer.payload)} as message ${answer.message_id}; dead letter ${id} is resolved.`, "ok");
    }
    refresh();
  });

  $("inspect-close").addEventListener("click", () => {
    $("inspector").hidden = true;
    inspected = null;
  });

  // The dead-letter list's Inspect buttons (console.js draws the rows).
  $("dead-letter-rows").addEventListener("click", (event) => {
    const target = event.target.closest("button.inspect");
    if (target) inspect(target.dataset.id);
  });

  // --- the audit trail -----------------------------------------------------------

  let pages = [null]; // the `before` of each page shown so far; null: the newest

  function describe(entry) {
    const letters = entry.count === 1 ? "1 letter" : `${kit.int(entry.count)} letters`;
    if (entry.action === "edit") {
      const change = entry.change || {};
      const from = change.from ? change.from + " → " : "";
      return `edit ${entry.target}: ${from}${change.to || "?"}`;
    }
    if (entry.scope === "group") return `${entry.action} group ${causes[entry.target] || entry.target}`;
    if (entry.scope === "all") return `${entry.action} all (${letters})`;
    return `${entry.action} by id (${letters})`;
  }

  function auditRow(entry) {
    const tr = document.createElement("tr");
    tr.dataset.outcome = entry.outcome;
    tr.dataset.action = entry.action;
    const when = kit.cell(new Date(entry.at).toLocaleString());
    when.title = entry.at;
    const who = kit.cell(entry.actor.name + (entry.actor.token ? " · " + entry.actor.token : ""), "who");
    const outcome = kit.cell(entry.detail, "outcome"); // "replayed 2", "refused (...): ..."
    tr.append(when, who, kit.cell(describe(entry), "what"), kit.cell(kit.int(entry.count), "num"), outcome);
    return tr;
  }

  async function loadAudit() {
    const before = pages[pages.length - 1];
    const query = `?limit=${AUDIT_PAGE}` + (before === null ? "" : `&before=${before}`);
    const answer = await read("/dead-letters/audit" + query);
    if (!answer) return;
    if (answer.entries.length) $("audit-rows").replaceChildren(...answer.entries.map(auditRow));
    else emptyRow($("audit-rows"), 5, "nothing done to the dead letters yet");
    $("audit-older").disabled = answer.next_before === null;
    $("audit-older").dataset.before = answer.next_before === null ? "" : String(answer.next_before);
    $("audit-newest").disabled = pages.length === 1;
  }

  $("audit-older").addEventListener("click", (event) => {
    pages.push(Number(event.currentTarget.dataset.before));
    loadAudit();
  });
  $("audit-newest").addEventListener("click", () => {
    pages = [null];
    loadAudit();
  });

  // --- keeping it current -------------------------------------------------------------

  async function refresh() {
    await loadGroups();
    if (pages.length === 1) await loadAudit(); // an older page stays as it is
  }

  document.addEventListener("deadletterschanged", refresh);
  setInterval(refresh, REFRESH_MS);
  refresh();
})();
