// The little JavaScript HTML cannot replace (docs/ARCHITECTURE.md, "The front end"): streamed text appended
// piece by piece, Enter to send, composer state, image uploads (button, paste, drop) with
// progress, auto-scroll, Copy buttons, the narrow-screen menu. No inline script anywhere (the CSP forbids it); everything hangs off document events.
(function () {
  "use strict";

  // --- Streaming -------------------------------------------------------------------------

  // This page among a conversation's open pages (turns/live.py): sent with every request and
  // with the page's conversation stream, so that what it sends is not echoed back to it. It
  // lives as long as the page's script, across htmx's page swaps.
  const TAB = Array.from(window.crypto.getRandomValues(new Uint8Array(8)), function (b) {
    return b.toString(16).padStart(2, "0");
  }).join("");

  // The frames a second a stream this page starts is sent at most (turns/pacing.py): every
  // event costs the main thread whether or not a frame shows it. S9, 2,500 tokens at 250 a
  // second, interleaved runs: 0.70-0.74 ms of main thread per token at 30, 0.52-0.64 at 20;
  // visible lag p50 25-31 ms either way (text goes in at most every FLUSH_GAP_MS), p99
  // 42-51 against 58-60 ms. Every token after a pause still goes at once.
  const FRAMES_ASKED = 20;

  document.addEventListener("htmx:configRequest", function (evt) {
    evt.detail.headers["X-Chat-Tab"] = TAB;
    evt.detail.headers["X-Chat-Frames"] = String(FRAMES_ASKED);
  });

  // Count code points, as the server's offsets do (a JS string length counts UTF-16 units).
  function codePoints(text) {
    let n = text.length;
    for (let i = 0; i < text.length; i++) {
      const c = text.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff) n--;
    }
    return n;
  }

  function dropCodePoints(text, count) {
    let i = 0;
    while (count > 0 && i < text.length) {
      const c = text.charCodeAt(i);
      i += c >= 0xd800 && c <= 0xdbff ? 2 : 1;
      count--;
    }
    return text.slice(i);
  }

  // The open block's text: the tail itself, or the <code> of its code box.
  function tailText(article) {
    const tail = article.querySelector(".msg-tail");
    return tail ? tail.querySelector("code") || tail : null;
  }

  // Append one piece of the answer as a text node (inert by construction: a "<" in a token can
  // never open a tag). The offsets make it idempotent: text the page already shows is skipped,
  // so a reconnect, a snapshot overlapping live frames or a second tab never repeat anything.
  //
  // How much of the text the page has is kept here; the article's data-offset is only where
  // the server's HTML started it. An attribute write on every event went through the DOM's
  // bindings and its mutation observers, and was the page's costliest function while
  // streaming (S9 profile, 250 events a second: appendPiece 95-118 ms of self time over a
  // 10 s stream, 1-3 ms since).
  const received = new WeakMap(); // article -> characters received (shown or waiting)

  function offsetOf(article) {
    const known = received.get(article);
    return known === undefined ? Number(article.dataset.offset || 0) : known;
  }

  function appendPiece(article, start, text) {
    const have = offsetOf(article);
    const length = codePoints(text);
    if (start + length <= have) return;
    if (start < have) text = dropCodePoints(text, have - start);
    received.set(article, Math.max(have, start + length));
    queueText(article, text);
  }

  // Text goes into the page at most once per FLUSH_GAP_MS, in one text node: the browser
  // renders a frame for every change, ~2.5 ms of main thread each while the view follows
  // the answer (S9, 250 one-token events a second: 1.27 ms per token rendered at every frame,
  // 0.94 at this gap). A token after a pause shows in the next frame. Everything that
  // replaces the open block, and the end, show what is waiting first.
  const FLUSH_GAP_MS = 33;
  const unshown = new Map();
  let flushQueued = false;
  let lastFlush = -Infinity;

  function queueText(article, text) {
    unshown.set(article, (unshown.get(article) || "") + text);
    if (flushQueued) return;
    flushQueued = true;
    const wait = lastFlush + FLUSH_GAP_MS - performance.now();
    if (wait > 8) window.setTimeout(() => window.requestAnimationFrame(flushText), wait - 8);
    else window.requestAnimationFrame(flushText);
  }

  function flushText() {
    flushQueued = false;
    lastFlush = performance.now();
    unshown.forEach(function (text, article) {
      showText(article, text);
    });
    unshown.clear();
  }

  function flushArticle(article) {
    const text = unshown.get(article);
    if (text === undefined) return;
    unshown.delete(article);
    showText(article, text);
  }

  function showText(article, text) {
    const box = tailText(article);
    if (box) box.append(text);
    clearStatus(article);
    scheduleScroll();
  }

  function clearStatus(article) {
    const status = article.querySelector(".msg-status");
    if (status && status.textContent) status.textContent = "";
  }

  // Blocks that closed, rendered and sanitised on the server (rendering.py), go in before the
  // open block, which starts over with the text the event carries: in a code box once its
  // fence is known, as the final HTML will show it. Only the server's HTML is parsed here.
  function showBlocks(article, update) {
    flushArticle(article);
    const tail = article.querySelector(".msg-tail");
    if (!tail || Number(article.dataset.block || 0) !== update.o) return;
    if (update.h) {
      const template = document.createElement("template");
      template.innerHTML = update.h;
      template.content.querySelectorAll("pre").forEach(addCopyButton);
      tail.before(template.content);
    }
    tail.replaceWith(openBlock(update.t, update.c));
    article.dataset.block = String(update.e);
    received.set(article, update.n);
    clearStatus(article);
    scheduleScroll();
  }

  function openBlock(text, lang) {
    const tail = document.createElement("div");
    tail.className = "msg-tail";
    if (lang === undefined) {
      tail.append(text);
      return tail;
    }
    tail.classList.add("code-block");
    if (lang) {
      const label = document.createElement("div");
      label.className = "code-lang";
      label.textContent = lang;
      tail.append(label);
    }
    const pre = document.createElement("pre");
    pre.className = "code";
    const code = document.createElement("code");
    code.append(text);
    pre.append(code);
    tail.append(pre);
    return tail;
  }

  // The final fragment replaces the streaming article where it stands: its blocks are the
  // ones already shown, so the reader's view must not move (or, following, stays at the end).
  function finishAnswer(article, html) {
    flushArticle(article);
    const thread = document.getElementById("thread");
    const top = thread ? thread.scrollTop : 0;
    const height = article.getBoundingClientRect().height;
    awaitingAnswer = false; // announced below, not again by the swap's htmx:load
    if (!fillShell(article, html)) {
      htmx.swap(article, html, { swapStyle: "outerHTML", swapDelay: 0, settleDelay: 0 });
    }
    const done = document.getElementById(article.id);
    // Until the browser first renders it (content-visibility, app.css) the new article would
    // count as a placeholder's height: give it the old one's, so that nothing moves meanwhile.
    if (done) done.style.containIntrinsicSize = "auto " + Math.round(height) + "px";
    if (thread) thread.scrollTop = follow.on ? thread.scrollHeight : top;
    if (done) announce(done);
  }

  // An answer to a message sent from this page is announced when it ends, also when it
  // ended before its stream attached (a fast answer to a new chat's first message arrives
  // already finished in the conversation's page).
  let awaitingAnswer = false;

  function announceIfFinished() {
    if (!awaitingAnswer) return;
    const answers = document.querySelectorAll("#thread article.msg-assistant");
    const last = answers[answers.length - 1];
    if (last && !last.hasAttribute("data-active")) announce(last);
  }

  // The final fragment as a shell (turns/consumer.py): its body is empty, because the blocks
  // the page shows are the same HTML. The streaming article becomes the final one in place:
  // its attributes and everything around its body are the fragment's, and the body itself is
  // not touched, so the answer is neither sent, nor parsed, nor laid out again (S9).
  function fillShell(article, html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    const fresh = template.content.firstElementChild;
    const shell = fresh && fresh.querySelector(":scope > .msg-body[data-shell]");
    const body = article.querySelector(":scope > .msg-body");
    if (!shell || !body) return false;
    htmx.trigger(article, "htmx:beforeCleanupElement"); // closes its stream (the SSE extension)
    article.getAttributeNames().forEach(function (name) {
      if (!fresh.hasAttribute(name)) article.removeAttribute(name);
    });
    fresh.getAttributeNames().forEach(function (name) {
      article.setAttribute(name, fresh.getAttribute(name));
    });
    const tail = body.querySelector(":scope > .msg-tail");
    if (tail) tail.remove();
    Array.from(article.childNodes).forEach(function (node) {
      if (node !== body) node.remove();
    });
    const before = [];
    let node = fresh.firstChild;
    while (node && node !== shell) {
      before.push(node);
      node = node.nextSibling;
    }
    body.before(...before);
    body.after(...Array.from(fresh.childNodes).filter((n) => n !== shell));
    htmx.process(article);
    syncComposer();
    return true;
  }

  // A finished answer is announced politely, by its first words (screen readers).
  function announce(answer) {
    awaitingAnswer = false;
    const live = document.getElementById("announcer");
    if (!live) return;
    const failed = answer.querySelector(".msg-error");
    const body = answer.querySelector(".msg-body");
    const words = ((failed || body || answer).textContent || "").trim().replace(/\s+/g, " ");
    live.textContent = (failed ? "Answer failed: " : "Answer finished: ") + words.slice(0, 140);
  }

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    const message = evt.detail;
    // Connection errors reach "error" listeners too; only server-sent events carry data.
    if (typeof message.data !== "string") {
      evt.preventDefault();
      return;
    }
    const article = evt.target.closest("article");
    if (!article) return;
    if (message.type === "done" || message.type === "error") {
      evt.preventDefault();
      finishAnswer(article, message.data);
    }
  });

  // Messages another page of this conversation sent (turns/live.py). The first line says
  // where they go: `after` the article they follow (a page on another branch leaves them
  // out), or in place of the one `replaces` names and of all after it (a new version, or
  // what is left of a deleted turn); those already shown are left.
  // A title written after the first answer (turns/titles.py): the header, the sidebar entry
  // and the window's title follow; a name being typed in Rename is left alone.
  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    const message = evt.detail;
    if (message.type !== "title" || typeof message.data !== "string") return;
    evt.preventDefault();
    let title = "";
    try {
      title = JSON.parse(message.data).title || "";
    } catch (e) {
      return;
    }
    const events = document.getElementById("conversation-events");
    const id = events && events.dataset.conversation;
    const heading = document.querySelector(".title-block h1");
    if (!title || !id) return;
    if (heading) heading.textContent = title;
    const link = document.getElementById("side-" + id);
    if (link) {
      const pin = link.querySelector(".pin");
      link.textContent = title;
      if (pin) link.prepend(pin, " ");
    }
    document.title = title + " · Gemini Chat";
  });

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    const message = evt.detail;
    if (message.type !== "turn" || typeof message.data !== "string") return;
    evt.preventDefault();
    const thread = document.getElementById("thread");
    if (!thread) return;
    const cut = message.data.indexOf("\n");
    let place;
    try {
      place = JSON.parse(cut < 0 ? message.data : message.data.slice(0, cut));
    } catch (e) {
      return;
    }
    const html = cut < 0 ? "" : message.data.slice(cut + 1);
    const template = document.createElement("template");
    template.innerHTML = html;
    const articles = Array.from(template.content.children).filter(function (node) {
      return node.matches("article") && !document.getElementById(node.id);
    });
    if (place.replaces) {
      const old = document.getElementById(place.replaces);
      if (!old || !thread.contains(old)) return;
      dropAfter(old);
      old.replaceWith(...articles);
    } else {
      const last = lastArticle();
      if (place.after ? !last || last.id !== place.after : last) return;
      thread.append(...articles);
    }
    const empty = thread.querySelector(".thread-empty");
    if (empty && articles.length) empty.remove();
    articles.forEach(function (article) {
      htmx.process(article);
      addCopyButtons(article);
    });
    syncComposer();
  });

  function lastArticle() {
    const all = document.querySelectorAll("#thread article.msg");
    return all.length ? all[all.length - 1] : null;
  }

  // Everything the thread shows after `article` (its branch below it), stream and all.
  function dropAfter(article) {
    const all = Array.from(document.querySelectorAll("#thread article.msg"));
    all.slice(all.indexOf(article) + 1).forEach(function (later) {
      htmx.trigger(later, "htmx:beforeCleanupElement"); // closes a stream it holds
      later.remove();
    });
  }

  // A control marked `data-branch` (a version, Regenerate, an edit, Delete turn) is answered
  // with the branch that takes the place of its message: what followed that message goes.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    const elt = evt.detail.requestConfig && evt.detail.requestConfig.elt;
    const target = evt.detail.target;
    if (!evt.detail.shouldSwap || !elt || !elt.matches || !elt.matches("[data-branch]")) return;
    if (!target || !target.matches || !target.matches("#thread article.msg")) return;
    dropAfter(target);
  });

  // An answer's text and blocks, nearly every event of its stream, go straight to their
  // handlers: through the SSE extension's swap listener each cost ~0.3 ms more (two DOM
  // events and an extension walk per token, S9). The extension keeps the connection, its
  // reconnects and close, and the status, done and error events.
  function answerEvents(article, source) {
    source.addEventListener("delta", function (evt) {
      if (!article.isConnected) return;
      const piece = JSON.parse(evt.data);
      appendPiece(article, piece.o, piece.t);
    });
    source.addEventListener("blocks", function (evt) {
      if (article.isConnected) showBlocks(article, JSON.parse(evt.data));
    });
    return source;
  }

  // A new EventSource (first connect, or the extension's reconnect after a failure) asks for
  // text after what the page already shows; the browser's own reconnects send Last-Event-ID.
  function installEventSourceFactory() {
    if (!window.htmx) return;
    htmx.createEventSource = function (url) {
      let target = url;
      const source = document.querySelector('[sse-connect="' + CSS.escape(url) + '"]');
      if (source && source.id === "conversation-events") {
        const resolved = new URL(url, window.location.href);
        resolved.searchParams.set("tab", TAB);
        target = resolved.pathname + resolved.search;
      } else if (source && source.matches("article")) {
        const resolved = new URL(url, window.location.href);
        resolved.searchParams.set("after", String(offsetOf(source)));
        resolved.searchParams.set("block", source.dataset.block || "0");
        target = resolved.pathname + resolved.search;
        return answerEvents(source, new EventSource(target, { withCredentials: true }));
      }
      return new EventSource(target, { withCredentials: true });
    };
  }

  // --- Composer ------------------------------------------------------------------------

  let wasBusy = false;

  function syncComposer() {
    const form = document.getElementById("composer");
    if (!form) return;
    const busy = Boolean(document.querySelector("#thread article[data-active]"));
    const row = form.querySelector(".composer-row");
    const stop = form.querySelector("button.stop");
    if (row) row.disabled = busy;
    if (stop) stop.disabled = !busy || !stop.hasAttribute("hx-post");
    // The next message follows the end of the branch this page shows.
    const parent = document.getElementById("composer-parent");
    const last = lastArticle();
    if (parent) parent.value = last ? last.id.replace(/^m-/, "") : "";
    if (wasBusy && !busy) {
      // In the next frame, not in the swap that ended the turn: focus needs an up-to-date
      // layout, and forcing one here lays out the new answer twice in one task.
      window.requestAnimationFrame(function () {
        const text = document.getElementById("composer-text");
        if (text && !text.closest("fieldset").disabled) text.focus({ preventScroll: true });
      });
    }
    wasBusy = busy;
  }

  // A send disables the composer as it leaves (htmx has read the form by then) rather than
  // when the new messages arrive: disabling the box that has focus moves focus, which needs
  // a layout, and here the page is still clean, while after the swap it means laying out the
  // whole thread synchronously. A refused or failed send enables it again (afterRequest).
  document.addEventListener("htmx:beforeRequest", function (evt) {
    const form = document.getElementById("composer");
    if (!form || evt.detail.elt !== form) return;
    const row = form.querySelector(".composer-row");
    if (row) row.disabled = true;
    wasBusy = true;
  });

  document.addEventListener("keydown", function (evt) {
    const text = evt.target;
    if (!text || text.id !== "composer-text") return;
    if (evt.key !== "Enter" || evt.shiftKey || evt.altKey || evt.ctrlKey || evt.metaKey) return;
    if (evt.isComposing) return; // an input method is still composing a character
    evt.preventDefault();
    if (text.closest("fieldset").disabled || (!text.value.trim() && !imageCount())) return;
    text.form.requestSubmit();
  });

  document.addEventListener("input", function (evt) {
    if (evt.target && evt.target.id === "composer-text") growTextarea(evt.target);
  });

  // Where CSS sizes the box to its text (field-sizing, app.css) no script is needed; elsewhere
  // measuring scrollHeight lays out the page on every keystroke, so it is only the fallback.
  const cssSizesTextarea = Boolean(window.CSS && CSS.supports("field-sizing", "content"));

  function growTextarea(text) {
    if (cssSizesTextarea) return;
    text.style.height = "auto";
    text.style.height = Math.min(text.scrollHeight, window.innerHeight * 0.4) + "px";
  }

  document.addEventListener("htmx:afterRequest", function (evt) {
    const form = document.getElementById("composer");
    if (!form || evt.detail.elt !== form) return;
    if (evt.detail.successful) {
      // Only a send the server accepted clears the box: a refused one keeps every character.
      const text = document.getElementById("composer-text");
      text.value = "";
      text.style.height = ""; // back to one line, without measuring
      document.getElementById("composer-error").textContent = "";
      // The images went with the message (its fragment shows them); the tray starts empty.
      const list = tray();
      if (list) list.replaceChildren();
      setUploadStatus("");
    }
    syncComposer();
  });

  // A request that never reached the app, or that the app failed on (5xx, not swapped by the
  // htmx-config in base.html), says so where refusals appear; whatever was typed stays put.
  function requestFailed(words) {
    const error = document.getElementById("composer-error");
    if (error) error.textContent = words;
  }

  document.addEventListener("htmx:sendError", function () {
    requestFailed("Could not reach the app (network error). Nothing was lost: try again.");
    connectionLost();
  });

  // --- Connection ----------------------------------------------------------------------

  // While the server cannot be reached (a request or a stream failed, or the browser went
  // offline) the page says "Reconnecting…" and asks /healthz every few seconds; the notice
  // goes when it answers. Nothing typed is touched. Streams reconnect on their own.
  const HEALTH_EVERY_MS = 3000;
  let probing = null;

  function connectionLost() {
    const notice = document.getElementById("connection");
    if (!notice) return;
    if (notice.hidden) notice.hidden = false;
    if (probing === null) probing = window.setInterval(probeHealth, HEALTH_EVERY_MS);
  }

  function connectionBack() {
    const notice = document.getElementById("connection");
    if (notice && !notice.hidden) notice.hidden = true;
    if (probing !== null) {
      window.clearInterval(probing);
      probing = null;
    }
  }

  function probeHealth() {
    const app = document.getElementById("app");
    if (!app || !navigator.onLine) return;
    fetch(app.dataset.healthUrl, { cache: "no-store" }).then(
      function (response) {
        if (response.ok) connectionBack();
      },
      function () {
        /* still unreachable: the next probe will tell */
      }
    );
  }

  document.addEventListener("htmx:sseError", connectionLost);
  document.addEventListener("htmx:sseOpen", connectionBack);
  window.addEventListener("offline", connectionLost);
  window.addEventListener("online", probeHealth);

  document.addEventListener("htmx:responseError", function (evt) {
    const status = evt.detail.xhr.status;
    if (status >= 500) requestFailed(`The app failed on this request (HTTP ${status}). Try again.`);
  });

  document.addEventListener("htmx:afterSwap", function (evt) {
    const settings = document.getElementById("settings");
    if (!settings) return;
    if (settings.querySelector(".field-error:not(:empty)")) {
      setSettings(true);
    } else if (evt.detail.target === document.body) {
      // A new page swapped in (a new chat's first message) shows the settings as they were.
      // Here, in the swap's own task, not at htmx:load after the settle: in between the
      // server's closed panel would be painted and a click on Settings would be undone.
      setSettings(document.body.classList.contains("settings-open"));
    }
  });

  // --- The settings panel ----------------------------------------------------------------

  // Opened and closed by the header's "Settings" button (or "Close settings", or Esc); on a
  // wide screen it stays open from page to page, as the person left it.
  const WIDE = window.matchMedia("(min-width: 1024px)");

  function setSettings(open) {
    const panel = document.getElementById("settings");
    const toggle = document.querySelector(".settings-toggle");
    if (!panel || !toggle) return;
    panel.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
    document.body.classList.toggle("settings-open", open);
    if (WIDE.matches) {
      try {
        window.localStorage.setItem("settingsOpen", open ? "1" : "");
      } catch (e) {
        /* storage refused: the panel just starts closed next time */
      }
    }
  }

  function settingsOpen() {
    const panel = document.getElementById("settings");
    return Boolean(panel && !panel.hidden);
  }

  document.addEventListener("click", function (evt) {
    if (!evt.target.closest) return;
    if (evt.target.closest(".settings-toggle")) {
      setSettings(!settingsOpen());
      if (settingsOpen()) {
        const first = document.querySelector("#settings textarea, #settings input:not([type=hidden]), #settings select");
        if (first) first.focus({ preventScroll: true });
      }
    } else if (evt.target.closest(".settings-close")) {
      setSettings(false);
      const toggle = document.querySelector(".settings-toggle");
      if (toggle) toggle.focus({ preventScroll: true });
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    let remembered = "";
    try {
      remembered = window.localStorage.getItem("settingsOpen") || "";
    } catch (e) {
      remembered = "";
    }
    if (WIDE.matches && remembered) setSettings(true);
  });

  // The settings panel autosaves on any change, so its requests come from the panel, not
  // from a field: name the field that changed (HX-Trigger-Name), so that a new Model
  // re-renders the options it accepts, while other fields only get their errors swapped.
  //
  // The trigger's delay folds changes made close together into one request, and a request
  // whose answer was not drawn (below) passes its changes on: of the fields changed since the
  // last request, the one that redraws the most is named (a Model, then Functions).
  let panelChanged = new Set(); // fields changed since the panel's last request went out
  let panelSent = new Set(); // the fields that request carried
  document.addEventListener(
    "change",
    function (evt) {
      const field = evt.target;
      if (!field.name || !field.closest) return;
      if (field.closest(".settings-panel") || field.id === "id_model") panelChanged.add(field.name);
    },
    true,
  );

  document.addEventListener("htmx:configRequest", function (evt) {
    const panel = evt.detail.elt;
    if (!panel || !panel.classList || !panel.classList.contains("settings-panel")) return;
    const changed = evt.detail.triggeringEvent && evt.detail.triggeringEvent.target;
    panelSent = panelChanged; // the triggering field among them (the capturing listener above)
    panelChanged = new Set();
    const name = ["model", "functions"].find((n) => panelSent.has(n)) || (changed && changed.name);
    if (name) evt.detail.headers["HX-Trigger-Name"] = name;
  });

  // An answer that redraws the options section (a new Model, new Functions) drew what that
  // request saved. A change made since, still waiting out the trigger's delay, is in the
  // section: drawing the answer over it would put the saved list back, and the function just
  // added would go with the next request. The newer request draws the section instead.
  document.addEventListener("htmx:oobBeforeSwap", function (evt) {
    const id = evt.detail.target && evt.detail.target.id;
    if ((id !== "settings-options" && id !== "model-route") || !panelChanged.size) return;
    evt.detail.shouldSwap = false;
    panelSent.forEach((n) => panelChanged.add(n));
  });

  // --- Images ------------------------------------------------------------------------

  // Each image is uploaded as soon as it is chosen, pasted or dropped: one XHR per image (for
  // upload progress). The server validates it and answers with its thumbnail and the hidden
  // input that sends it with the message (_attachment_item.html); a refusal is plain text.
  // Send waits for uploads still running.

  const uploads = new WeakMap(); // tray item -> its XMLHttpRequest
  let pendingSend = null; // htmx's issueRequest, held while uploads finish

  function tray() {
    return document.getElementById("attachments");
  }

  function imageCount() {
    const list = tray();
    return list ? list.children.length : 0;
  }

  function uploadsRunning() {
    const list = tray();
    return list ? list.querySelectorAll("[data-uploading]").length : 0;
  }

  // Decimal megabytes, as the server words its limits.
  function megabytes(size) {
    const value = size / 1e6;
    if (value >= 10 || value === Math.floor(value)) return Math.round(value) + " MB";
    return value.toFixed(1) + " MB";
  }

  function composerError(message) {
    const box = document.getElementById("composer-error");
    if (!box) return;
    const p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = message;
    box.replaceChildren(p);
  }

  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRFToken"] || "";
    } catch (e) {
      return "";
    }
  }

  function addImages(files) {
    const list = tray();
    if (!list || !files.length) return;
    const max = Number(list.dataset.maxCount || 8);
    const maxBytes = Number(list.dataset.maxBytes || 0);
    const problems = [];
    for (const file of files) {
      if (list.children.length >= max) {
        problems.push("You can attach up to " + max + " images to one message.");
        break;
      }
      if (maxBytes && file.size > maxBytes) {
        problems.push(
          (file.name || "This image") + " is " + megabytes(file.size) + "; the limit is " +
            megabytes(maxBytes) + "."
        );
        continue;
      }
      upload(list, file);
    }
    if (problems.length) composerError(problems.join(" "));
    syncUploads();
  }

  function upload(list, file) {
    const item = document.createElement("li");
    item.className = "attachment uploading";
    item.dataset.uploading = "";
    const preview = document.createElement("img");
    const previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl; // a blob: URL of the person's own file (the CSP allows blob:)
    preview.alt = "Uploading " + (file.name || "image");
    const progress = document.createElement("progress");
    progress.max = 100;
    progress.value = 0;
    progress.setAttribute("aria-label", "Uploading " + (file.name || "image"));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "attachment-remove";
    remove.setAttribute("aria-label", "Remove image");
    remove.textContent = "×";
    item.append(preview, progress, remove);
    list.append(item);
    queued.push(function () {
      send(list, item, file, progress, previewUrl);
    });
    pumpUploads();
  }

  // The server decodes at most two of one person's images at a time (and refuses a third):
  // the rest wait here, shown as uploading, and go as earlier ones finish.
  const UPLOADS_AT_ONCE = 2;
  const queued = [];
  let sending = 0;

  function pumpUploads() {
    while (sending < UPLOADS_AT_ONCE && queued.length) {
      sending += 1;
      queued.shift()();
    }
  }

  function send(list, item, file, progress, previewUrl) {
    if (!item.isConnected) {
      // Removed while it waited its turn.
      URL.revokeObjectURL(previewUrl);
      sending -= 1;
      pumpUploads();
      return;
    }
    const xhr = new XMLHttpRequest();
    uploads.set(item, xhr);
    xhr.open("POST", list.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", csrfToken());
    xhr.upload.addEventListener("progress", function (evt) {
      if (evt.lengthComputable) progress.value = Math.round((evt.loaded * 100) / evt.total);
    });
    function settle(problem) {
      URL.revokeObjectURL(previewUrl);
      uploads.delete(item);
      sending -= 1;
      pumpUploads();
      if (problem) {
        item.remove();
        composerError(problem);
        if (pendingSend) {
          pendingSend = null; // the person decides whether to send without it
          setUploadStatus("Not sent: an image could not be uploaded.");
        }
      }
      syncUploads();
    }
    xhr.addEventListener("load", function () {
      const type = xhr.getResponseHeader("Content-Type") || "";
      if (xhr.status !== 200) {
        const said = type.startsWith("text/plain") && xhr.responseText.trim();
        settle(said || "The image could not be uploaded (error " + xhr.status + "). Try again.");
        return;
      }
      const template = document.createElement("template");
      template.innerHTML = xhr.responseText.trim();
      const done = template.content.firstElementChild;
      // Anything else (a login page after the session ended) is not an attached image.
      if (!done || !done.matches("li.attachment") || !done.querySelector("input[name=attachments]")) {
        settle("The image could not be uploaded. Reload the page and try again.");
        return;
      }
      if (item.isConnected) item.replaceWith(done);
      settle(null);
    });
    xhr.addEventListener("error", function () {
      settle("The image could not be uploaded: the connection was lost. Attach it again.");
    });
    xhr.addEventListener("abort", function () {
      settle(null);
    });
    const data = new FormData();
    data.append("image", file, file.name || "image");
    xhr.send(data);
  }

  function setUploadStatus(text) {
    const status = document.getElementById("upload-status");
    if (status) status.textContent = text;
  }

  function syncUploads() {
    const running = uploadsRunning();
    if (running) {
      setUploadStatus(
        "Uploading " + running + (running === 1 ? " image" : " images") +
          (pendingSend ? "… the message is sent when the upload finishes." : "…")
      );
    } else if (!pendingSend) {
      const status = document.getElementById("upload-status");
      if (status && status.textContent.startsWith("Uploading")) setUploadStatus("");
    }
    if (pendingSend && !running) {
      const send = pendingSend;
      pendingSend = null;
      setUploadStatus("");
      send(true);
    }
  }

  // Send while images are still uploading: hold the request and issue it when they are done
  // (htmx collects the form then, hidden inputs of the finished uploads included).
  document.addEventListener("htmx:confirm", function (evt) {
    const form = document.getElementById("composer");
    if (!form || evt.detail.elt !== form || !uploadsRunning()) return;
    evt.preventDefault();
    pendingSend = evt.detail.issueRequest;
    syncUploads();
  });

  document.addEventListener("change", function (evt) {
    if (!evt.target || evt.target.id !== "attach-input") return;
    addImages(Array.from(evt.target.files || []));
    evt.target.value = ""; // choosing the same file again is a new attachment
  });

  document.addEventListener("paste", function (evt) {
    const form = document.getElementById("composer");
    if (!form || !(form.contains(evt.target) || evt.target === document.body)) return;
    const files = Array.from((evt.clipboardData && evt.clipboardData.files) || []);
    if (!files.length) return; // plain text pastes as usual
    evt.preventDefault();
    addImages(files);
  });

  // Drop anywhere on the page: never let the browser navigate away to the dropped file.
  function carriesFiles(evt) {
    return Boolean(
      evt.dataTransfer && Array.from(evt.dataTransfer.types || []).includes("Files") && tray()
    );
  }

  function setDragging(on) {
    document.body.classList.toggle("dragging", on);
  }

  document.addEventListener("dragover", function (evt) {
    if (!carriesFiles(evt)) return;
    evt.preventDefault();
    evt.dataTransfer.dropEffect = "copy";
    setDragging(true);
  });

  document.addEventListener("dragleave", function (evt) {
    if (!evt.relatedTarget) setDragging(false); // left the window
  });

  document.addEventListener("drop", function (evt) {
    if (!carriesFiles(evt)) return;
    evt.preventDefault();
    setDragging(false);
    addImages(Array.from(evt.dataTransfer.files || []));
  });

  document.addEventListener("click", function (evt) {
    const remove = evt.target.closest && evt.target.closest(".attachment-remove");
    if (!remove) return;
    const item = remove.closest("li");
    const xhr = uploads.get(item);
    item.remove();
    if (xhr) xhr.abort();
    syncUploads();
    const text = document.getElementById("composer-text");
    if (text) text.focus();
  });

  // --- Scrolling -----------------------------------------------------------------------

  // Follow the answer while the reader is at the bottom; stop as soon as they scroll up (wheel,
  // touch, keys, the scrollbar) and offer "Jump to latest". Only the reader's own scrolling
  // turns following off: text that grows, blocks that arrive and the final swap never do.
  const follow = { on: true, intent: -Infinity };
  let scrollQueued = false;
  const AT_BOTTOM_PX = 48;

  function atBottom(thread) {
    return thread.scrollHeight - thread.scrollTop - thread.clientHeight < AT_BOTTOM_PX;
  }

  function scheduleScroll() {
    if (scrollQueued) return;
    scrollQueued = true;
    window.requestAnimationFrame(function () {
      scrollQueued = false;
      const thread = document.getElementById("thread");
      if (!thread) return;
      if (follow.on) thread.scrollTop = thread.scrollHeight;
      syncJump(thread);
    });
  }

  // Written only when it changes: touching the button's attribute, even with the same
  // value, makes the browser lay out the whole thread again (S9: 2.5 ms a frame).
  function syncJump(thread) {
    const jump = document.getElementById("jump-latest");
    const hide = follow.on || atBottom(thread);
    if (jump && jump.hidden !== hide) jump.hidden = hide;
  }

  function followLatest() {
    follow.on = true;
    const thread = document.getElementById("thread");
    if (thread) thread.scrollTop = thread.scrollHeight;
    scheduleScroll();
  }

  function noteIntent() {
    follow.intent = performance.now();
  }

  function watchThread() {
    const thread = document.getElementById("thread");
    if (!thread || thread.dataset.watched) return;
    thread.dataset.watched = "1";
    ["wheel", "touchmove", "pointerdown", "keydown"].forEach(function (type) {
      thread.addEventListener(type, noteIntent, { passive: true });
    });
    thread.addEventListener(
      "scroll",
      function () {
        if (performance.now() - follow.intent < 1000) follow.on = atBottom(thread);
        else if (follow.on) scheduleScroll(); // moved by layout, not by the reader: stay at the end
        syncJump(thread);
      },
      { passive: true }
    );
    // The last message's size: a message that arrives is laid out only when it is first
    // rendered (content-visibility, app.css), after any script could scroll to it, so the
    // view keeps following it as it takes its real size.
    let last = null;
    const sizes = new ResizeObserver(function () {
      if (follow.on && !atBottom(thread)) thread.scrollTop = thread.scrollHeight;
      syncJump(thread);
    });
    function watchLast() {
      if (thread.lastElementChild === last) return;
      if (last) sizes.unobserve(last);
      last = thread.lastElementChild;
      if (last) sizes.observe(last);
    }
    watchLast();
    // The thread's own height changes too (the composer grows to three lines on a phone while
    // typing, an error appears above it): the end stays in view.
    sizes.observe(thread);
    // Messages added or replaced (send, done, retry) change the composer's state: in the
    // thread itself and in each page of earlier messages (_thread_page.html).
    const changes = new MutationObserver(function (records) {
      for (const record of records) {
        record.addedNodes.forEach(function (node) {
          if (node.classList && node.classList.contains("thread-page")) {
            changes.observe(node, { childList: true });
          }
        });
      }
      watchLast();
      syncComposer();
      scheduleScroll();
    });
    changes.observe(thread, { childList: true });
    thread.querySelectorAll(".thread-page").forEach(function (page) {
      changes.observe(page, { childList: true });
    });
    if (showHit(thread)) return;
    follow.on = true;
    thread.scrollTop = thread.scrollHeight;
  }

  // --- Search --------------------------------------------------------------------------

  // A search hit opens its conversation scrolled to the message that matched, its words
  // marked with the CSS Custom Highlight API (no change to the message's own DOM).
  function showHit(thread) {
    const hit = thread.dataset.hit && document.getElementById(thread.dataset.hit);
    if (!hit) return false;
    follow.on = false;
    hit.classList.add("search-hit");
    hit.scrollIntoView({ block: "center" });
    let words = [];
    try {
      words = JSON.parse(thread.dataset.words || "[]");
    } catch (e) {
      words = [];
    }
    markWords(hit, words);
    return true;
  }

  function markWords(root, words) {
    if (!window.CSS || !CSS.highlights || typeof Highlight !== "function" || !words.length) return;
    const escaped = words.map(function (word) {
      return word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    });
    // Whole words, as the search matched them (\b knows only ASCII).
    const pattern = new RegExp("(?<![\\p{L}\\p{N}_])(?:" + escaped.join("|") + ")(?![\\p{L}\\p{N}_])", "giu");
    const ranges = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      if (node.parentElement && node.parentElement.closest(".msg-foot")) continue;
      for (const match of node.data.matchAll(pattern)) {
        const range = new Range();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        ranges.push(range);
      }
    }
    CSS.highlights.set("search", new Highlight(...ranges));
  }

  // The results take the list's place while the box has text; Esc clears the box.
  document.addEventListener("htmx:afterSwap", function (evt) {
    if (!evt.detail.target || evt.detail.target.id !== "search-results") return;
    syncSearch();
  });
  document.addEventListener("input", function (evt) {
    if (evt.target && evt.target.id === "search-box" && !evt.target.value.trim()) syncSearch();
  });
  document.addEventListener(
    "keydown",
    function (evt) {
      const box = evt.target;
      if (!box || box.id !== "search-box" || evt.key !== "Escape" || !box.value) return;
      evt.preventDefault();
      evt.stopImmediatePropagation(); // clearing the box does not also stop an answer
      box.value = "";
      syncSearch();
    },
    true
  );

  function syncSearch() {
    const box = document.getElementById("search-box");
    const results = document.getElementById("search-results");
    const list = document.querySelector("#sidebar .conversations");
    if (!box || !results || !list) return;
    const searching = Boolean(box.value.trim());
    if (!searching) results.innerHTML = "";
    results.hidden = !searching;
    list.hidden = searching;
  }

  document.addEventListener("click", function (evt) {
    if (evt.target.closest && evt.target.closest("#jump-latest")) followLatest();
  });
  // Pressing it leaves the focus where it is: taking it from the message box would shrink the
  // box (three lines while typing on a phone) and move the button away before the click.
  document.addEventListener("mousedown", function (evt) {
    if (evt.target.closest && evt.target.closest("#jump-latest")) evt.preventDefault();
  });

  // Sending brings the new message and the start of its answer into view, and follows it.
  document.addEventListener("htmx:beforeRequest", function (evt) {
    const form = document.getElementById("composer");
    if (form && evt.detail.elt === form) {
      follow.on = true;
      awaitingAnswer = true;
    }
  });

  // --- Copy buttons --------------------------------------------------------------------

  function addCopyButtons(root) {
    root.querySelectorAll(".msg-body pre").forEach(function (pre) {
      if (!pre.closest(".msg-tail")) addCopyButton(pre);
    });
  }

  function addCopyButton(pre) {
    if (pre.parentElement && pre.parentElement.classList.contains("code-wrap")) return;
    const wrap = document.createElement("div");
    wrap.className = "code-wrap";
    pre.replaceWith(wrap);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy";
    button.textContent = "Copy code";
    wrap.append(button, pre);
  }

  // Say "Copied" on the button for a moment, then its own name again.
  function copied(button) {
    const name = button.dataset.name || button.textContent;
    button.dataset.name = name;
    button.textContent = "Copied";
    window.setTimeout(function () {
      button.textContent = name;
    }, 1500);
  }

  // An answer's markdown, as written, comes from the server (the page holds only its HTML).
  // The clipboard is handed a promise, so the click's permission to write survives the fetch.
  function copyAnswer(button) {
    const text = fetch(button.dataset.url, { credentials: "same-origin" }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.text();
    });
    let done;
    if (navigator.clipboard && window.isSecureContext && window.ClipboardItem) {
      const item = new ClipboardItem({
        "text/plain": text.then(function (t) {
          return new Blob([t], { type: "text/plain" });
        }),
      });
      done = navigator.clipboard.write([item]);
    } else {
      done = text.then(copyText);
    }
    done.then(
      function () {
        copied(button);
      },
      function () {
        button.textContent = "Copy failed";
      }
    );
  }

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(text);
    }
    // Plain-http deployments have no Clipboard API: fall back to a selection.
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "offscreen";
    document.body.append(area);
    area.select();
    document.execCommand("copy");
    area.remove();
    return Promise.resolve();
  }

  document.addEventListener("click", function (evt) {
    const button = evt.target.closest("button.copy");
    if (button) {
      const code = button.parentElement.querySelector("pre code") || button.nextElementSibling;
      copyText(code.textContent).then(function () {
        copied(button);
      });
      return;
    }
    const whole = evt.target.closest("button.copy-answer");
    if (whole) {
      copyAnswer(whole);
      return;
    }
    if (evt.target.closest(".menu-toggle")) {
      setMenu(!document.body.classList.contains("nav-open"));
    } else if (evt.target.closest(".menu-close") || !evt.target.closest(".sidebar")) {
      setMenu(false);
    }
  });

  // The narrow-screen menu: the sidebar slides over the page; Escape, "Close menu" or a click
  // outside it closes it. Keyboard focus goes into the menu when it opens and back to the
  // Menu button when it closes around the focus (a hidden element cannot keep it).
  function setMenu(open) {
    if (document.body.classList.contains("nav-open") === open) return;
    const sidebar = document.getElementById("sidebar");
    const focusInside = sidebar && sidebar.contains(document.activeElement);
    document.body.classList.toggle("nav-open", open);
    const toggle = document.querySelector(".menu-toggle");
    if (toggle) toggle.setAttribute("aria-expanded", String(open));
    if (open) {
      const close = document.querySelector(".menu-close");
      if (close) close.focus({ preventScroll: true });
    } else if (focusInside && toggle) {
      toggle.focus({ preventScroll: true });
    }
  }

  // --- Keyboard ------------------------------------------------------------------------

  // The shortcuts of the "Keyboard shortcuts" dialog (chat.html), ChatGPT's where it has one.
  document.addEventListener("keydown", function (evt) {
    const mod = evt.ctrlKey || evt.metaKey;
    const key = evt.key.length === 1 ? evt.key.toLowerCase() : evt.key;
    if (key === "Escape" && !evt.shiftKey && !mod) {
      if (document.querySelector("dialog[open]")) return; // the dialog closes itself
      if (document.body.classList.contains("nav-open")) {
        setMenu(false);
        return;
      }
      if (settingsOpen() && document.getElementById("settings").contains(document.activeElement)) {
        setSettings(false);
        const toggle = document.querySelector(".settings-toggle");
        if (toggle) toggle.focus({ preventScroll: true });
        return;
      }
      const stop = document.querySelector("#composer button.stop");
      if (stop && !stop.disabled) {
        evt.preventDefault();
        stop.click();
      }
    } else if (key === "Escape" && evt.shiftKey) {
      evt.preventDefault();
      focusComposer();
    } else if (mod && evt.shiftKey && key === "o") {
      evt.preventDefault();
      const app = document.getElementById("app");
      if (app) window.location.assign(app.dataset.newChatUrl);
    } else if (mod && evt.shiftKey && key === "c") {
      const answers = document.querySelectorAll("#thread button.copy-answer");
      if (!answers.length) return;
      evt.preventDefault();
      copyAnswer(answers[answers.length - 1]);
    } else if (mod && key === "/") {
      evt.preventDefault();
      showShortcuts();
    }
  });

  function focusComposer() {
    const text = document.getElementById("composer-text");
    if (text && !text.closest("fieldset").disabled) text.focus({ preventScroll: true });
  }

  function showShortcuts() {
    const dialog = document.getElementById("shortcuts");
    if (dialog && !dialog.open) dialog.showModal();
  }

  document.addEventListener("click", function (evt) {
    if (evt.target.closest && evt.target.closest("#shortcuts-open")) showShortcuts();
  });

  // --- Wiring --------------------------------------------------------------------------

  // Values set aside by a model change (_settings_options.html): "Restore" goes back to the
  // model that takes them, "Discard" drops them; either is saved like any other change.
  document.addEventListener("click", function (evt) {
    if (!evt.target.closest) return;
    const restore = evt.target.closest("[data-restore]");
    const discard = evt.target.closest("[data-discard]");
    if (restore) {
      const model = document.getElementById("id_model");
      if (!model) return;
      model.value = restore.dataset.restore;
      model.dispatchEvent(new Event("change", { bubbles: true }));
    } else if (discard) {
      const notice = discard.closest(".set-aside");
      const panel = document.querySelector(".settings-panel");
      if (notice) notice.remove();
      if (panel) htmx.trigger(panel, "change");
    }
  });

  // Choosing a preset, typing its name or a saved schema's name is not a change of the chat's
  // settings: the panel's autosave must not hear it (it would also cancel the preset's page
  // load, hx-sync).
  function quietBlocks(root) {
    if (!root.querySelectorAll) return;
    const quiet = "#presets, .saved-schemas, .fn-new";
    const blocks = Array.from(root.querySelectorAll(quiet));
    if (root.matches && root.matches(quiet)) blocks.push(root);
    blocks.forEach(function (block) {
      if (block.dataset.quiet) return;
      block.dataset.quiet = "1";
      block.addEventListener("change", function (evt) {
        evt.stopPropagation();
      });
    });
  }

  // "Use" on a saved schema: its text goes into the JSON schema box, and the change reaches
  // the panel from the box, so it is checked and saved like one typed there.
  document.addEventListener("click", function (evt) {
    const use = evt.target.closest && evt.target.closest("[data-use-schema]");
    if (!use) return;
    const source = use.parentElement.querySelector("template[data-schema-text]");
    const box = use.closest(".field") && use.closest(".field").querySelector("textarea.schema-editor");
    if (!source || !box) return;
    box.value = source.content.textContent;
    box.dispatchEvent(new Event("change", { bubbles: true }));
    const status = use.closest(".saved-schemas-body").querySelector("[role=status]");
    if (status) status.textContent = "Using the schema “" + use.dataset.useSchema + "”.";
    box.focus();
  });

  // Functions (_settings_options.html): the declared list is the JSON in the "Functions as
  // JSON" box; "Save function" adds one to it and "Remove" takes one out, and the change
  // reaches the panel from the box, so the server checks and saves it like one typed there.
  // The checks here only answer sooner, with the server's words; the server checks again.
  const FN_NAME = /^[A-Za-z0-9_-]{1,64}$/;
  const FN_MAX = 128;

  function functionsBox(from) {
    const field = from.closest("fieldset.functions");
    return field && field.querySelector("textarea[name=functions]");
  }

  function declared(box) {
    const text = box.value.trim();
    if (!text) return [];
    const list = JSON.parse(text);
    return Array.isArray(list) ? list : [list];
  }

  function saveFunctions(box, list) {
    box.value = list.length ? JSON.stringify(list, null, 2) : "";
    box.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // The section is drawn again after each change of the list: "Import or export as JSON"
  // stays as the person left it (open, with the focus in its box if it was there).
  let functionsJsonOpen = false;
  document.addEventListener(
    "toggle",
    function (evt) {
      if (evt.target.matches && evt.target.matches("details.fn-json")) {
        functionsJsonOpen = evt.target.open;
      }
    },
    true,
  );
  document.addEventListener("htmx:load", function (evt) {
    const details = evt.target.querySelector && evt.target.querySelector("details.fn-json");
    if (details && functionsJsonOpen) details.open = true;
  });

  document.addEventListener("click", function (evt) {
    if (!evt.target.closest) return;
    const open = evt.target.closest(".fn-add-open");
    const add = evt.target.closest("[data-fn-add]");
    const remove = evt.target.closest("[data-fn-remove]");
    if (open) {
      const form = document.getElementById(open.getAttribute("aria-controls"));
      if (!form) return;
      form.hidden = !form.hidden;
      open.setAttribute("aria-expanded", String(!form.hidden));
      if (!form.hidden) form.querySelector("input").focus();
    } else if (add) {
      const form = add.closest(".fn-new");
      const box = functionsBox(add);
      const error = form.querySelector(".field-error");
      const name = form.querySelector("#fn-name").value.trim();
      const description = form.querySelector("#fn-description").value.trim();
      const schemaText = form.querySelector("#fn-parameters").value.trim();
      let list;
      let parameters = { type: "object", properties: {} };
      try {
        list = declared(box);
      } catch (e) {
        error.textContent = "Functions as JSON is not valid JSON: fix it first.";
        return;
      }
      if (!FN_NAME.test(name)) {
        error.textContent = "Function name: 1 to 64 letters, digits, _ or -.";
        return;
      }
      if (list.some(function (f) { return f && f.name === name; })) {
        error.textContent = "Function name: " + name + " is declared already; each name once.";
        return;
      }
      if (list.length >= FN_MAX) {
        error.textContent = "Functions: at most " + FN_MAX + " functions.";
        return;
      }
      if (schemaText) {
        try {
          parameters = JSON.parse(schemaText);
        } catch (e) {
          error.textContent = "Parameters (JSON Schema) is not valid JSON: " + e.message;
          return;
        }
      }
      error.textContent = "";
      list.push({ name: name, description: description, parameters: parameters });
      saveFunctions(box, list);
    } else if (remove) {
      const box = functionsBox(remove);
      let list;
      try {
        list = declared(box);
      } catch (e) {
        return;
      }
      const name = remove.dataset.fnRemove;
      saveFunctions(box, list.filter(function (f) { return !f || f.name !== name; }));
    }
  });

  // --- Confirmations ----------------------------------------------------------------------

  // hx-confirm asks in the page's own dialog (chat.html): keyboard and screen-reader friendly,
  // styled, and Cancel has the focus, so Enter does not delete anything by accident.
  document.addEventListener("htmx:confirm", function (evt) {
    const question = evt.detail.question;
    const dialog = document.getElementById("confirm");
    if (!question || !dialog || typeof dialog.showModal !== "function") return;
    evt.preventDefault();
    document.getElementById("confirm-text").textContent = question;
    dialog.returnValue = "";
    dialog.addEventListener(
      "close",
      function () {
        if (dialog.returnValue === "ok") evt.detail.issueRequest(true);
      },
      { once: true }
    );
    dialog.showModal();
    dialog.querySelector("button[value=cancel]").focus();
  });

  // The browser's time zone, for the sidebar's "Today", "Yesterday"... (web/requests.py).
  try {
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (zone) document.cookie = "tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
  } catch (e) {
    /* no Intl: the server's time zone groups the sidebar */
  }

  // --- Editing a message ------------------------------------------------------------------

  // The edit box opens with the focus at the end of the text; Ctrl+Enter (⌘+Enter) sends it,
  // Esc cancels. Capturing, so that Esc here does not also stop an answer.
  function focusEdit(root) {
    let box = null;
    if (root.matches && root.matches(".msg-editing")) box = root.querySelector("textarea");
    else if (root.querySelector) box = root.querySelector(".rename-form input[name=title]");
    if (!box) return;
    box.focus({ preventScroll: true });
    box.setSelectionRange(box.value.length, box.value.length);
  }

  document.addEventListener(
    "keydown",
    function (evt) {
      const box = evt.target;
      if (!box || !box.closest || !box.closest(".edit-form, .rename-form")) return;
      const form = box.closest(".edit-form, .rename-form");
      if (evt.key === "Escape") {
        evt.preventDefault();
        evt.stopImmediatePropagation();
        const cancel = form.querySelector("button[type=button]");
        if (cancel) cancel.click();
      } else if (evt.key === "Enter" && (evt.ctrlKey || evt.metaKey) && box.matches("textarea")) {
        evt.preventDefault();
        form.requestSubmit();
      }
    },
    true
  );

  // "Regenerate with another model" loads its list the first time it opens (toggle does not
  // bubble: captured).
  document.addEventListener(
    "toggle",
    function (evt) {
      const menu = evt.target;
      if (!menu.matches || !menu.matches("details.regenerate-menu") || !menu.open) return;
      const list = menu.querySelector(".menu");
      const article = menu.closest("article");
      const events = document.getElementById("conversation-events");
      if (!list || list.dataset.loaded || !article || !events) return;
      list.dataset.loaded = "1";
      list.innerHTML = '<p class="menu-loading">Loading models…</p>';
      const app = document.getElementById("app");
      const base = (app && app.dataset.newChatUrl) || "/";
      const url = base + "c/" + events.dataset.conversation + "/" + article.id.replace(/^m-/, "m/") + "/models/";
      htmx.ajax("GET", url, { target: list, swap: "innerHTML" });
    },
    true
  );

  // An open "Regenerate with another model" menu closes on Esc or a click elsewhere.
  document.addEventListener("click", function (evt) {
    document.querySelectorAll("details.regenerate-menu[open]").forEach(function (menu) {
      if (!menu.contains(evt.target)) menu.open = false;
    });
  });
  document.addEventListener(
    "keydown",
    function (evt) {
      if (evt.key !== "Escape") return;
      const menu = evt.target.closest && evt.target.closest("details.regenerate-menu[open]");
      if (!menu) return;
      evt.preventDefault();
      evt.stopImmediatePropagation();
      menu.open = false;
      menu.querySelector("summary").focus();
    },
    true
  );

  // `body[data-ready]`: htmx has taken over the page (its controls answer). A new chat's first
  // message swaps the whole body, and for a moment after it the new controls are inert; the
  // browser tests wait on this instead of racing it.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    if (evt.detail.target === document.body) delete document.body.dataset.ready;
  });

  document.addEventListener("htmx:load", function (evt) {
    const composer = document.getElementById("composer");
    if (!composer || (evt.target.contains && evt.target.contains(composer))) {
      document.body.dataset.ready = "1";
    }
    quietBlocks(evt.target);
    focusEdit(evt.target);
    addCopyButtons(evt.target);
    watchThread();
    syncComposer();
    announceIfFinished();
  });

  // The message box has the focus when a page opens, where typing is what comes next: not on
  // a touch screen, where focusing it would open the keyboard over the conversation.
  document.addEventListener("DOMContentLoaded", function () {
    if (window.matchMedia("(pointer: fine)").matches) focusComposer();
  });

  installEventSourceFactory();
})();

// --- Import progress ---
// The import page's upload: how much of the file has gone (htmx:xhr:progress), then that
// the server is importing it (a large export takes a while; the report replaces this).
(function () {
  "use strict";
  function importParts(evt) {
    const form = evt.target && evt.target.closest && evt.target.closest(".import-form");
    if (!form) return null;
    return { bar: document.getElementById("import-upload"), stage: document.getElementById("import-stage") };
  }
  document.addEventListener("htmx:xhr:loadstart", function (evt) {
    const parts = importParts(evt);
    if (!parts) return;
    parts.bar.value = 0;
    parts.bar.removeAttribute("aria-valuetext");
    parts.stage.textContent = "Uploading…";
  });
  document.addEventListener("htmx:xhr:progress", function (evt) {
    const parts = importParts(evt);
    if (!parts || !evt.detail.lengthComputable || !evt.detail.total) return;
    const percent = Math.round((100 * evt.detail.loaded) / evt.detail.total);
    parts.bar.value = percent;
    parts.stage.textContent = percent < 100 ? "Uploading… " + percent + "%" : "Importing… a large export can take a minute.";
  });
})();

// --- Cost estimate ---
// Under the composer: what this prompt would cost on the chosen model at its list price for
// input (each model option's data-input-price, USD per million tokens, providers/prices.py),
// at about four characters a token of everything a turn sends: the typed text, the
// conversation the page shows (the whole thread goes with every turn) and the system prompt.
// The answer's output is not in it. All in the browser: no request per keystroke; the thread
// is measured again only after a swap, so typing costs a sum of three numbers.
(function () {
  "use strict";
  const CHARS_PER_TOKEN = 4;
  let threadChars = null;

  function countThread() {
    let total = 0;
    document.querySelectorAll("#thread .msg-text, #thread .msg-body").forEach(function (part) {
      total += part.textContent.trim().length;
    });
    return total;
  }

  function dollars(usd) {
    if (usd === 0) return "$0";
    if (usd < 0.0001) return "< $0.0001";
    return "$" + usd.toFixed(usd >= 1 ? 2 : 4);
  }

  function updateEstimate() {
    const out = document.getElementById("cost-estimate");
    const select = document.getElementById("id_model");
    if (!out || !select) return;
    const option = select.selectedOptions[0];
    const price = option && option.dataset.inputPrice !== undefined ? Number(option.dataset.inputPrice) : NaN;
    if (threadChars === null) threadChars = countThread();
    const text = document.getElementById("composer-text");
    const system = document.getElementById("id_system_prompt");
    const chars = threadChars + (text ? text.value.length : 0) + (system ? system.value.length : 0);
    if (!Number.isFinite(price) || chars === 0) {
      out.hidden = true;
      return;
    }
    const tokens = Math.ceil(chars / CHARS_PER_TOKEN);
    const words = "≈ " + dollars((tokens * price) / 1e6) + " estimated for this prompt";
    // Only a change of the words themselves is announced (aria-live), not every keystroke.
    if (out.textContent !== words) out.textContent = words;
    out.title =
      "An estimate of the input only: about " + tokens.toLocaleString("en") + " tokens (your message, the conversation shown and the system prompt, at " +
      CHARS_PER_TOKEN + " characters a token) at $" + price + " per million input tokens, the list price of " +
      option.textContent.trim() + ". The answer's output tokens and images are not included.";
    out.hidden = false;
  }

  document.addEventListener("input", function (evt) {
    const id = evt.target && evt.target.id;
    if (id === "composer-text" || id === "id_system_prompt") updateEstimate();
  });
  document.addEventListener("change", function (evt) {
    if (evt.target && evt.target.id === "id_model") updateEstimate();
  });
  // The thread changed (a send, an answer's end, another version, a new page of the thread):
  // measured again once per frame at most, however many swaps and stream events came.
  let measuring = false;
  function threadChanged() {
    threadChars = null;
    if (measuring) return;
    measuring = true;
    window.requestAnimationFrame(function () {
      measuring = false;
      updateEstimate();
    });
  }
  ["htmx:load", "htmx:afterSettle", "htmx:sseMessage", "htmx:sseClose"].forEach(function (name) {
    document.addEventListener(name, threadChanged);
  });
})();
