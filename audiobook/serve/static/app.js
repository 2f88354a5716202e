// The audiobook page: plain JavaScript over the JSON API (/openapi.json), no build step.
// Two views: the library (/) and one book (/books/ID). Live progress comes from /api/events.
"use strict";

const main = document.getElementById("main");
const player = document.getElementById("player");
let view = null; // {kind: "library"} or {kind: "book", id}
let refreshTimer = null;

// ---- small helpers ---------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) throw new Error((body && body.error) || `${response.status} ${response.statusText}`);
  return body;
}

function show(...children) {
  main.replaceChildren(...children.flat().filter((child) => child !== null && child !== undefined && child !== false));
}

function say(text, kind = "error") {
  const box = document.getElementById("message");
  box.textContent = text;
  box.className = kind === "error" ? "" : kind;
  box.hidden = !text;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  seconds = Math.round(seconds);
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m) return `${m}m${String(s).padStart(2, "0")}s`;
  return `${s}s`;
}

function eta(book) {
  if (book.state === "done") return "";
  if (book.state === "running" && book.chunks.pending + book.chunks.failed === 0) return "writing the audiobook…";
  return book.eta_s === null ? "ETA …" : `ETA ${duration(book.eta_s)}`;
}

function bar(percent) {
  return el("span", { class: "bar", title: `${percent}%` }, el("span", { style: `width:${percent}%` }));
}

function stateBadge(state) {
  return el("span", { class: `state ${state}` }, state);
}

function play(src, label) {
  document.getElementById("player-bar").hidden = false;
  document.getElementById("now-playing").textContent = label;
  player.src = src;
  player.play().catch(() => {}); // a browser may want a click first; the controls are there
}

// ---- the library -----------------------------------------------------------------------------------

async function showLibrary() {
  const books = await api("/api/books");
  show(
    el("h1", {}, "Library"),
    uploadForm(),
    pathForm(),
    books.length ? booksTable(books) : el("p", { class: "muted", id: "empty" }, "No books yet: add one above."),
  );
}

function uploadForm() {
  const form = el(
    "form",
    { class: "add", id: "upload-form" },
    el("label", {}, "Upload a book ", el("input", { type: "file", name: "file", id: "upload-file", required: true })),
    el("button", { class: "primary", type: "submit" }, "Add"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const book = await api("/api/books", { method: "POST", body: new FormData(form) });
      say(`Added "${book.title}" (${book.chunks_total} chunks).`, "info");
      refresh();
    } catch (error) {
      say(error.message);
    }
  });
  return form;
}

function pathForm() {
  const input = el("input", { type: "text", name: "path", id: "add-path", placeholder: "a file inside the library directory" });
  const form = el("form", { class: "add", id: "path-form" }, el("label", {}, "Or add by path ", input), el("button", { type: "submit" }, "Add"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const book = await api("/api/books", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ path: input.value }),
      });
      say(`Added "${book.title}" (${book.chunks_total} chunks).`, "info");
      refresh();
    } catch (error) {
      say(error.message);
    }
  });
  return form;
}

function booksTable(books) {
  return el(
    "table",
    { id: "books" },
    el("thead", {}, el("tr", {}, ["Book", "State", "Progress", "ETA", "", "Download"].map((h) => el("th", {}, h)))),
    el("tbody", {}, books.map(bookRow)),
  );
}

function bookRow(book) {
  return el(
    "tr",
    { "data-book": book.id },
    el("td", {}, el("a", { href: `/books/${book.id}`, class: "title" }, book.title), el("div", { class: "muted" }, book.author)),
    el("td", {}, stateBadge(book.state), book.error ? el("div", { class: "error" }, book.error) : null),
    el("td", {}, bar(book.percent), " ", el("span", { class: "progress-text" }, `${book.percent}% · ${book.chunks.done}/${book.chunks_total} chunks`)),
    el("td", { class: "eta" }, eta(book)),
    el("td", {}, actions(book)),
    el("td", {}, book.download ? el("a", { href: book.download, class: "download", download: "" }, `Download ${book.format}`) : null),
  );
}

function actions(book) {
  const act = (verb, label) =>
    el("button", {
      class: verb,
      onclick: async () => {
        try {
          await api(`/api/books/${book.id}/${verb}`, { method: "POST" });
          refresh();
        } catch (error) {
          say(error.message);
        }
      },
    }, label);
  const buttons = [];
  if (book.state === "queued" || book.state === "running") buttons.push(act("pause", "Pause"), act("cancel", "Cancel"));
  if (["paused", "cancelled", "failed", "error"].includes(book.state)) buttons.push(act("resume", "Resume"));
  if (book.position > 0 && book.state !== "done") {
    buttons.push(el("button", {
      class: "first",
      title: "Move to the front of the queue",
      onclick: async () => {
        await api(`/api/books/${book.id}/move`, { method: "POST", headers: { "Content-Type": "application/json" }, body: '{"position": 0}' });
        refresh();
      },
    }, "First"));
  }
  return el("div", { class: "actions" }, buttons);
}

// ---- one book --------------------------------------------------------------------------------------

async function showBook(id) {
  const book = await api(`/api/books/${encodeURIComponent(id)}`);
  show(
    el("p", {}, el("a", { href: "/" }, "← Library")),
    el("h1", { id: "book-title" }, book.title),
    el("p", { class: "muted" }, [book.author, `voice ${book.voice}`, `speed ${book.speed}`, book.format].filter(Boolean).join(" · ")),
    el(
      "div",
      { class: "summary", id: "book-summary" },
      stateBadge(book.state),
      bar(book.percent),
      el("span", { class: "progress-text" }, `${book.percent}% · ${book.chunks.done}/${book.chunks_total} chunks · ${duration(book.audio_done_s)} of audio`),
      el("span", { class: "eta" }, eta(book)),
      actions(book),
      book.download ? el("a", { href: book.download, class: "download", download: "" }, `Download ${book.format}`) : null,
    ),
    book.error ? el("p", { class: "error" }, book.error) : null,
    book.chapters.map((chapter) => chapterSection(book, chapter)),
  );
}

function chapterSection(book, chapter) {
  return el(
    "section",
    { "data-chapter": chapter.index },
    el(
      "h3",
      {},
      el("span", {}, `${chapter.index}. ${chapter.title}`),
      el("button", {
        class: "play-chapter",
        disabled: !chapter.done,
        title: chapter.done ? "Play the whole chapter" : "Playable once every chunk is done",
        onclick: () => play(chapter.audio, `${book.title}: ${chapter.title}`),
      }, "Play chapter"),
    ),
    el(
      "table",
      { class: "chunks" },
      el("thead", {}, el("tr", {}, ["Chunk", "Status", "Characters", "Audio", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, chapter.chunks.map((chunk) => chunkRow(book.id, chunk))),
    ),
  );
}

function chunkRow(bookId, chunk) {
  return el(
    "tr",
    { "data-chunk": chunk.id, "data-status": chunk.status, "data-audio": chunk.audio || "" },
    el("td", {}, chunk.id),
    el("td", { class: "status" }, stateBadge(chunk.status), chunk.error ? el("div", { class: "error" }, chunk.error) : null),
    el("td", {}, chunk.chars.toLocaleString()),
    el("td", {}, chunk.seconds === null ? "" : `${chunk.seconds.toFixed(1)} s`),
    el(
      "td",
      { class: "actions" },
      el("button", { class: "play", disabled: !chunk.audio, onclick: () => play(chunk.audio, `chunk ${chunk.id}`) }, "Play"),
      el("button", { class: "edit", onclick: (event) => editChunk(bookId, chunk.id, event.target.closest("tr")) }, "Edit"),
    ),
  );
}

async function editChunk(bookId, chunkId, row) {
  if (row.nextElementSibling && row.nextElementSibling.classList.contains("editing")) return;
  let chunk;
  try {
    chunk = await api(`/api/books/${bookId}/chunks/${chunkId}`);
  } catch (error) {
    say(error.message);
    return;
  }
  const text = el("textarea", { class: "edit-text", spellcheck: "true" });
  text.value = chunk.text;
  const editor = el(
    "tr",
    { class: "editing", "data-editing": chunkId },
    el(
      "td",
      { colspan: 5 },
      text,
      el(
        "div",
        { class: "actions" },
        el("button", {
          class: "save primary",
          onclick: async () => {
            try {
              await api(`/api/books/${bookId}/chunks/${chunkId}`, {
                method: "PUT",
                headers: { "Content-Type": "application/json" },
                body: JSON.stringify({ text: text.value }),
              });
              editor.remove();
              say(`Chunk ${chunkId} saved; it is being synthesized again.`, "info");
            } catch (error) {
              say(error.message);
            }
          },
        }, "Save and redo"),
        el("button", { class: "close", onclick: () => editor.remove() }, "Cancel"),
      ),
    ),
  );
  row.after(editor);
  text.focus();
}

function updateChunk(message) {
  const row = document.querySelector(`tr[data-chunk="${CSS.escape(message.chunk.id)}"]`);
  if (!row) return;
  const fresh = chunkRow(message.book, { chars: 0, seconds: null, audio: null, error: null, ...message.chunk });
  if (message.chunk.chars === undefined) fresh.children[2].replaceWith(row.children[2].cloneNode(true));
  row.replaceWith(fresh);
  const section = fresh.closest("section");
  section.querySelector("button.play-chapter").disabled = !!section.querySelector("tr[data-chunk]:not([data-status=done])");
  if (message.progress) {
    const p = message.progress;
    const summary = document.getElementById("book-summary");
    summary.querySelector(".bar").replaceWith(bar(p.percent));
    summary.querySelector(".progress-text").textContent =
      `${p.percent}% · ${p.chunks.done}/${p.chunks_total} chunks · ${duration(p.audio_done_s)} of audio`;
    summary.querySelector(".eta").textContent = eta({ state: "running", ...p });
  }
}

// ---- routing and live updates ----------------------------------------------------------------------

function route() {
  const match = location.pathname.match(/^\/books\/([^/]+)$/);
  view = match ? { kind: "book", id: decodeURIComponent(match[1]) } : { kind: "library" };
  refresh(0);
}

function refresh(delay = 400) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(async () => {
    if (document.querySelector("tr.editing")) return refresh(1000); // never redraw under someone typing
    try {
      if (view.kind === "book") await showBook(view.id);
      else await showLibrary();
    } catch (error) {
      say(error.message);
    }
  }, delay);
}

function listen() {
  const events = new EventSource("/api/events");
  const connection = document.getElementById("connection");
  events.onopen = () => (connection.textContent = "live");
  events.onerror = () => (connection.textContent = "reconnecting…");
  events.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (view.kind === "library") refresh();
    else if (message.book === view.id && message.type === "chunk") updateChunk(message);
    else if (message.book === view.id || message.type === "queue") refresh();
  };
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[href^='/']");
  if (!link || link.hasAttribute("download") || link.classList.contains("api")) return;
  event.preventDefault();
  history.pushState(null, "", link.getAttribute("href"));
  route();
});
window.addEventListener("popstate", route);
if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname); // now a cookie
route();
listen();
