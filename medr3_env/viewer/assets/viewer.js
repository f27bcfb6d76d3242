// MedR3 trajectory viewer. All data comes from the JSON block above; every piece of it is inserted
// with textContent or attribute setters, never parsed as HTML.
(function () {
  "use strict";

  const DATA = JSON.parse(document.getElementById("medr3-data").textContent);
  const EPISODES = DATA.episodes;
  const STRINGS = DATA.strings;
  const TERMS = DATA.terms;
  const $ = (id) => document.getElementById(id);
  const state = { page: 0, pageSize: 50, filtered: EPISODES, open: new Set() };
  let haystacks = null;

  function el(tag, props, children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null) continue;
        if (key === "text") node.textContent = value;
        else if (key === "className") node.className = value;
        else node.setAttribute(key, String(value));
      }
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const fmt = (x) => (typeof x === "number" && isFinite(x) ? x.toFixed(3) : "–");
  const str = (index) => (index === null || index === undefined ? "" : STRINGS[index]);

  // ---------------------------------------------------------------- highlighting
  const NONE = new Set();
  function highlighted(index, allowed) {
    const text = str(index);
    const spans = (DATA.spans && DATA.spans[index]) || [];
    const out = document.createDocumentFragment();
    let cursor = 0;
    for (let i = 0; i + 2 < spans.length; i += 3) {
      const start = spans[i], end = spans[i + 1], entity = spans[i + 2];
      if (!allowed.has(entity) || start < cursor) continue;
      if (start > cursor) out.append(document.createTextNode(text.slice(cursor, start)));
      out.append(el("mark", { className: "ent", title: DATA.entities[entity], text: text.slice(start, end) }));
      cursor = end;
    }
    if (cursor < text.length) out.append(document.createTextNode(text.slice(cursor)));
    return el("pre", { className: "text" }, [out]);
  }

  // ---------------------------------------------------------------- reward charts
  function miniBars(episode) {
    const box = el("span", { className: "mini", title: TERMS.map((t) => `${t}: ${fmt(episode.terms[t])}`).join("\n") });
    for (const term of TERMS) {
      const value = episode.terms[term];
      const height = value === undefined ? 0 : Math.max(1, Math.min(1, Math.abs(value)) * 18);
      box.append(el("span", { className: value < 0 ? "neg" : "", style: `height:${height}px` }));
    }
    return box;
  }

  function rewardChart(episode) {
    const rows = TERMS.filter((t) => t in episode.terms || t in episode.weights);
    const values = rows.map((t) => episode.terms[t] || 0);
    const low = Math.min(0, ...values), high = Math.max(1, ...values);
    const labelW = 150, barW = 170, rowH = 18, width = labelW + barW + 60;
    const scale = (v) => labelW + ((v - low) / (high - low)) * barW;
    const chart = svg("svg", {
      width, height: rows.length * rowH + 22, role: "img", class: "reward-chart",
      "aria-label": "reward per term",
    });
    rows.forEach((term, i) => {
      const y = i * rowH + 4, value = episode.terms[term] || 0;
      const weight = episode.weights[term];
      chart.append(svg("text", { x: 0, y: y + 11 }, `${term} ×${weight === undefined ? "?" : weight}`));
      const x0 = scale(0), x1 = scale(value);
      chart.append(svg("rect", {
        x: Math.min(x0, x1), y, width: Math.max(1, Math.abs(x1 - x0)), height: rowH - 6,
        fill: value < 0 ? "#b42318" : "#2f5fd0", "data-term": term,
      }));
      chart.append(svg("text", { x: labelW + barW + 6, y: y + 11 }, fmt(value)));
    });
    const y = rows.length * rowH + 16;
    chart.append(svg("line", { x1: scale(0), x2: scale(0), y1: 0, y2: rows.length * rowH + 2, stroke: "#5c6678" }));
    chart.append(svg("text", { x: 0, y }, `total ${fmt(episode.total)}`));
    return el("div", { className: "chart" }, [chart]);
  }

  // ---------------------------------------------------------------- one episode
  function turnMessages(turn, allowed) {
    const out = [];
    const who = el("div", { className: "who" }, [
      el("span", { text: `assistant · turn ${turn.i}` }),
      el("span", { className: "badge", text: turn.k }),
      turn.e ? el("span", { className: "badge err", text: turn.e }) : null,
      el("span", { className: "num", text: `reward ${fmt(turn.r)}` }),
      el("span", { text: Object.entries(turn.t).map(([k, v]) => `${k} ${fmt(v)}`).join(" · ") }),
    ]);
    // turn.m: bit 1 marks the turn text, bit 2 the feedback (the evidence term's own documents).
    out.push(el("div", { className: "msg assistant" }, [who, highlighted(turn.a, turn.m & 1 ? allowed : NONE)]));
    if (turn.o === null || turn.o === undefined || str(turn.o) === "") return out;
    const isError = str(turn.o).startsWith("<error>");
    let label = "environment";
    let body = highlighted(turn.o, turn.m & 2 ? allowed : NONE);
    if (turn.k === "search" || turn.k === "read") {
      const summaryText = turn.k === "search"
        ? `${turn.hits.length} documents retrieved: ${turn.hits.map((h) => `${h[0]} (${fmt(h[1])})`).join(", ")}`
        : `document ${turn.doc || ""}`;
      body = el("details", { className: "docs" }, [el("summary", { text: summaryText }), body]);
      label = turn.k === "search" ? "environment · search results" : "environment · document";
    }
    out.push(el("div", { className: "msg env" + (isError ? " error" : "") }, [
      el("div", { className: "who", text: label }), body,
    ]));
    return out;
  }

  function detail(episode) {
    const allowed = new Set(episode.ent);
    const facts = el("dl", null, [
      el("dt", { text: "item" }), el("dd", { text: `${episode.id} (${episode.type}, ${episode.stage} stage)` }),
      el("dt", { text: "gold" }), el("dd", { text: episode.gold_text === episode.gold ? episode.gold : `${episode.gold}: ${episode.gold_text}` }),
      el("dt", { text: "final answer" }), el("dd", { className: episode.ok ? "ok" : "bad", text: episode.final === null ? "(none)" : episode.final }),
      el("dt", { text: "ended" }), el("dd", { text: episode.trunc ? "truncated (turn budget)" : "answered" }),
      el("dt", { text: "matched entities" }),
      el("dd", null, [el("span", { className: "chips" },
        episode.ent.length ? episode.ent.map((e) => el("span", { className: "chip", text: DATA.entities[e] })) : [el("span", { text: "none" })])]),
    ]);
    const question = [el("pre", { className: "text", text: str(episode.q) })];
    if (episode.opts) {
      for (const [letter, text] of Object.entries(episode.opts)) question.push(el("div", { text: `${letter}. ${text}` }));
    }
    const conversation = el("div", { className: "conversation" }, [
      el("div", { className: "msg user" }, [el("div", { className: "who", text: "user · question" }), ...question]),
    ]);
    for (const turn of episode.turns) conversation.append(...turnMessages(turn, allowed));
    return el("div", { className: "episode-detail-body" }, [
      el("div", { className: "episode-head" }, [el("div", { className: "facts" }, [facts]), rewardChart(episode)]),
      conversation,
    ]);
  }

  function row(episode) {
    const tr = el("tr", { className: "episode-row", "data-episode": episode.n, tabindex: 0, "aria-expanded": "false" }, [
      el("td", { className: "num", text: episode.n }),
      el("td", { text: episode.id }),
      el("td", { text: episode.stage }),
      el("td", { text: episode.type }),
      el("td", { className: episode.ok ? "ok" : "bad", text: episode.ok ? "✓ correct" : "✗ wrong" }),
      el("td", { className: "num", text: fmt(episode.total) }),
      el("td", null, [miniBars(episode)]),
      el("td", { className: "num", text: episode.turns.length }),
      el("td", { className: "q", title: str(episode.q), text: str(episode.q) }),
    ]);
    const toggle = () => {
      const next = tr.nextElementSibling;
      if (next && next.classList.contains("episode-detail")) {
        next.remove();
        tr.classList.remove("open");
        tr.setAttribute("aria-expanded", "false");
        state.open.delete(episode.n);
        return;
      }
      const cell = el("td", { className: "detail", colspan: 9 }, [detail(episode)]);
      tr.after(el("tr", { className: "episode-detail", "data-episode": episode.n }, [cell]));
      tr.classList.add("open");
      tr.setAttribute("aria-expanded", "true");
      state.open.add(episode.n);
    };
    tr.addEventListener("click", toggle);
    tr.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") { event.preventDefault(); toggle(); }
    });
    return tr;
  }

  // ---------------------------------------------------------------- filters and pages
  function haystack(index) {
    if (haystacks === null) haystacks = new Array(EPISODES.length);
    if (haystacks[index] === undefined) {
      const e = EPISODES[index];
      const parts = [e.id, str(e.q), e.gold, e.gold_text, e.final || ""];
      for (const turn of e.turns) parts.push(str(turn.a));
      haystacks[index] = parts.join("\n").toLowerCase();
    }
    return haystacks[index];
  }

  function number(id) {
    const raw = $(id).value.trim();
    const value = raw === "" ? NaN : Number(raw);
    return isFinite(value) ? value : null;
  }

  function applyFilters() {
    const outcome = $("f-outcome").value, stage = $("f-stage").value, type = $("f-type").value;
    const low = number("f-min"), high = number("f-max");
    const words = $("f-text").value.toLowerCase().split(/\s+/).filter(Boolean);
    const out = [];
    EPISODES.forEach((e, index) => {
      if (outcome === "correct" && !e.ok) return;
      if (outcome === "wrong" && e.ok) return;
      if (stage !== "all" && e.stage !== stage) return;
      if (type !== "all" && e.type !== type) return;
      if (low !== null && e.total < low) return;
      if (high !== null && e.total > high) return;
      if (words.length) {
        const text = haystack(index);
        if (!words.every((w) => text.includes(w))) return;
      }
      out.push(e);
    });
    const sort = $("f-sort").value;
    if (sort === "reward-desc") out.sort((a, b) => b.total - a.total || a.n - b.n);
    else if (sort === "reward-asc") out.sort((a, b) => a.total - b.total || a.n - b.n);
    else if (sort === "turns-desc") out.sort((a, b) => b.turns.length - a.turns.length || a.n - b.n);
    state.filtered = out;
    state.page = 0;
    render();
  }

  function summarise(list) {
    if (!list.length) return "no episodes";
    const accuracy = list.filter((e) => e.ok).length / list.length;
    const mean = list.reduce((s, e) => s + e.total, 0) / list.length;
    const terms = TERMS.map((t) => `${t} ${fmt(list.reduce((s, e) => s + (e.terms[t] || 0), 0) / list.length)}`);
    return `${list.length} episodes · accuracy ${fmt(accuracy)} · mean reward ${fmt(mean)} · ${terms.join(" · ")}`;
  }

  function render() {
    const list = state.filtered;
    const pages = Math.max(1, Math.ceil(list.length / state.pageSize));
    state.page = Math.min(state.page, pages - 1);
    const start = state.page * state.pageSize;
    const body = $("rows");
    const fragment = document.createDocumentFragment();
    for (const episode of list.slice(start, start + state.pageSize)) fragment.append(row(episode));
    body.replaceChildren(fragment);
    $("count").textContent = `${list.length} of ${EPISODES.length} episodes`;
    $("page").textContent = `page ${state.page + 1} of ${pages}`;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
    $("empty").hidden = list.length > 0;
    $("summary").textContent = summarise(list);
  }

  function fillSelect(id, values) {
    const select = $(id);
    for (const value of values) select.append(el("option", { value, text: value }));
  }

  function init() {
    fillSelect("f-stage", [...new Set(EPISODES.map((e) => e.stage))].sort());
    fillSelect("f-type", [...new Set(EPISODES.map((e) => e.type))].sort());
    $("generator").textContent = DATA.generator || "";
    let timer = null;
    const debounced = () => { clearTimeout(timer); timer = setTimeout(applyFilters, 150); };
    for (const id of ["f-outcome", "f-stage", "f-type", "f-sort"]) $(id).addEventListener("change", applyFilters);
    for (const id of ["f-min", "f-max", "f-text"]) $(id).addEventListener("input", debounced);
    $("f-reset").addEventListener("click", () => {
      for (const id of ["f-outcome", "f-stage", "f-type"]) $(id).value = "all";
      for (const id of ["f-min", "f-max", "f-text"]) $(id).value = "";
      $("f-sort").value = "index";
      applyFilters();
    });
    $("prev").addEventListener("click", () => { state.page -= 1; render(); });
    $("next").addEventListener("click", () => { state.page += 1; render(); });
    $("page-size").addEventListener("change", () => {
      state.pageSize = Number($("page-size").value) || 50;
      state.page = 0;
      render();
    });
    render();
    document.body.setAttribute("data-ready", "true");
  }

  init();
})();
