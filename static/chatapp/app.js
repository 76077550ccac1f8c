// The little JavaScript HTML cannot replace (DESIGN.md, Front end): streamed text appended
// piece by piece, Enter to send, composer state, auto-scroll, Copy buttons, the narrow-screen
// menu. No inline script anywhere (the CSP forbids it); everything hangs off document events.
(function () {
  "use strict";

  // --- Streaming -------------------------------------------------------------------------

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

  // Append one piece of the answer as a text node (inert by construction: a "<" in a token can
  // never open a tag). The offsets make it idempotent: text the page already shows is skipped,
  // so a reconnect, a snapshot overlapping live frames or a second tab never repeat anything.
  function appendPiece(article, box, start, text) {
    const have = Number(article.dataset.offset || 0);
    const length = codePoints(text);
    if (start + length <= have) return;
    if (start < have) text = dropCodePoints(text, have - start);
    box.append(text);
    article.dataset.offset = String(Math.max(have, start + length));
    const status = article.querySelector(".msg-status");
    if (status && status.textContent) status.textContent = "";
    scheduleScroll();
  }

  document.addEventListener("htmx:sseBeforeMessage", function (evt) {
    const message = evt.detail;
    // Connection errors reach "error" listeners too; only server-sent events carry data.
    if (typeof message.data !== "string") {
      evt.preventDefault();
      return;
    }
    if (message.type === "delta") {
      evt.preventDefault();
      const box = evt.target;
      const article = box.closest("article");
      const piece = JSON.parse(message.data);
      appendPiece(article, box, piece.o, piece.t);
    }
  });

  // A new EventSource (first connect, or the extension's reconnect after a failure) asks for
  // text after what the page already shows; the browser's own reconnects send Last-Event-ID.
  function installEventSourceFactory() {
    if (!window.htmx) return;
    htmx.createEventSource = function (url) {
      let target = url;
      const source = document.querySelector('[sse-connect="' + CSS.escape(url) + '"]');
      if (source) {
        const resolved = new URL(url, window.location.href);
        resolved.searchParams.set("after", source.dataset.offset || "0");
        target = resolved.pathname + resolved.search;
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
    if (wasBusy && !busy) {
      const text = document.getElementById("composer-text");
      if (text) text.focus();
    }
    wasBusy = busy;
  }

  document.addEventListener("keydown", function (evt) {
    const text = evt.target;
    if (!text || text.id !== "composer-text") return;
    if (evt.key !== "Enter" || evt.shiftKey || evt.altKey || evt.ctrlKey || evt.metaKey) return;
    if (evt.isComposing) return; // an input method is still composing a character
    evt.preventDefault();
    if (text.closest("fieldset").disabled || !text.value.trim()) return;
    text.form.requestSubmit();
  });

  document.addEventListener("input", function (evt) {
    if (evt.target && evt.target.id === "composer-text") growTextarea(evt.target);
  });

  function growTextarea(text) {
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
      growTextarea(text);
      document.getElementById("composer-error").textContent = "";
    }
  });

  document.addEventListener("htmx:afterSwap", function () {
    const settings = document.getElementById("settings");
    if (settings && settings.querySelector(".field-error:not(:empty)")) settings.open = true;
  });

  // --- Scrolling -----------------------------------------------------------------------

  // Follow the answer while the reader is at the bottom; stop as soon as they scroll up.
  let stickToBottom = true;
  let scrollQueued = false;

  function scheduleScroll() {
    if (!stickToBottom || scrollQueued) return;
    scrollQueued = true;
    window.requestAnimationFrame(function () {
      scrollQueued = false;
      const thread = document.getElementById("thread");
      if (thread && stickToBottom) thread.scrollTop = thread.scrollHeight;
    });
  }

  function watchThread() {
    const thread = document.getElementById("thread");
    if (!thread || thread.dataset.watched) return;
    thread.dataset.watched = "1";
    thread.addEventListener(
      "scroll",
      function () {
        stickToBottom = thread.scrollHeight - thread.scrollTop - thread.clientHeight < 80;
      },
      { passive: true }
    );
    // Messages added or replaced (send, done, retry) change the composer's state.
    new MutationObserver(function () {
      syncComposer();
      scheduleScroll();
    }).observe(thread, { childList: true });
    stickToBottom = true;
    thread.scrollTop = thread.scrollHeight;
  }

  // --- Copy buttons --------------------------------------------------------------------

  function addCopyButtons(root) {
    root.querySelectorAll(".msg-body pre").forEach(function (pre) {
      if (pre.parentElement.classList.contains("code-wrap")) return;
      const wrap = document.createElement("div");
      wrap.className = "code-wrap";
      pre.replaceWith(wrap);
      const button = document.createElement("button");
      button.type = "button";
      button.className = "copy";
      button.textContent = "Copy";
      wrap.append(button, pre);
    });
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
        button.textContent = "Copied";
        window.setTimeout(function () {
          button.textContent = "Copy";
        }, 1500);
      });
      return;
    }
    if (evt.target.closest(".menu-toggle")) {
      setMenu(!document.body.classList.contains("nav-open"));
    } else if (evt.target.closest(".menu-close") || !evt.target.closest(".sidebar")) {
      setMenu(false);
    }
  });

  // The narrow-screen menu: the sidebar slides over the page; Escape, "Close menu" or a click
  // outside it closes it.
  function setMenu(open) {
    if (document.body.classList.contains("nav-open") === open) return;
    document.body.classList.toggle("nav-open", open);
    const toggle = document.querySelector(".menu-toggle");
    if (toggle) toggle.setAttribute("aria-expanded", String(open));
  }

  document.addEventListener("keydown", function (evt) {
    if (evt.key === "Escape") setMenu(false);
  });

  // --- Wiring --------------------------------------------------------------------------

  document.addEventListener("htmx:load", function (evt) {
    addCopyButtons(evt.target);
    watchThread();
    syncComposer();
  });

  installEventSourceFactory();
})();
