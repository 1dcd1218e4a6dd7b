// odqa's page: ask /v1/ask, show the answer in its passage, the alternatives, the passages and timings.
"use strict";
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function showError(msg) {
  $("error").textContent = msg;
  $("error").hidden = false;
  $("status").textContent = "";
}

function render(r) {
  $("result").hidden = false;
  const best = r.answers[0];
  const byId = Object.fromEntries(r.passages.map((p) => [p.id, p]));
  const passage = $("answer-passage");
  passage.replaceChildren();
  if (best) {
    const text = (byId[best.passage_id] || {}).text || "";
    $("answer-text").textContent = best.text;
    $("answer-text").classList.toggle("unsure", r.abstained);
    $("unsure").hidden = !r.abstained;
    $("prob").textContent = `(확률 ${best.probability.toFixed(3)})`;
    $("answer-source").textContent = `${best.title} · ${best.passage_id}` + (r.sentence_level ? " · 문장 단위" : "");
    passage.append(text.slice(0, best.start), el("mark", text.slice(best.start, best.end)), text.slice(best.end));
  } else {
    $("answer-text").textContent = "답을 찾지 못했습니다 (no answer found)";
    $("answer-text").classList.remove("unsure");
    $("unsure").hidden = true;
    $("prob").textContent = "";
    $("answer-source").textContent = "";
  }
  $("alternatives").replaceChildren(...r.answers.slice(1).map((a) =>
    el("li", `${a.text} — ${a.probability.toFixed(3)} [${a.title}]`)));
  if (r.answers.length < 2) $("alternatives").append(el("li", "없음", "meta"));
  $("mode").textContent = `(${r.mode}, ${r.passages.length})`;
  $("passages").replaceChildren(...r.passages.map((p) => {
    const li = el("li");
    li.append(el("strong", p.title), " ", el("span", p.source, "src"), " ",
              el("span", `score ${p.score.toFixed(3)}`, "meta"), el("span", p.text, "text"));
    return li;
  }));
  $("timings").textContent = "timings: " + Object.entries(r.timings)
    .map(([s, v]) => `${s} ${(v * 1000).toFixed(1)} ms`).join(" · ") + ` · batch of ${r.batch_size}`;
}

async function ask(question) {
  $("error").hidden = true;
  $("status").textContent = "묻는 중…";
  const headers = { "Content-Type": "application/json" };
  const key = sessionStorage.getItem("odqa-key");
  if (key) headers["X-API-Key"] = key;
  let res, body;
  try {
    res = await fetch("/v1/ask", { method: "POST", headers, body: JSON.stringify({ question }) });
    body = await res.json().catch(() => ({}));
  } catch (e) {
    return showError("The server cannot be reached: is `odqa serve` still running?");
  }
  if (res.status === 401) $("key-row").hidden = false;
  if (!res.ok) return showError(body.error || `The server answered ${res.status}.`);
  $("status").textContent = "";
  render(body);
}

$("key").addEventListener("change", (e) => sessionStorage.setItem("odqa-key", e.target.value));
$("ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("q").value.trim();
  if (!q) return showError("Type a question first.");
  history.replaceState(null, "", "?q=" + encodeURIComponent(q));   // the address can be shared
  ask(q);
});
const shared = new URLSearchParams(location.search).get("q");
if (shared) { $("q").value = shared; ask(shared); }
