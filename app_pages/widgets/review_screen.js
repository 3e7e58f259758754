// The review screen in the browser: every key press is bound to the example on screen.
//
// Each press becomes a numbered action naming its example ("tag 12 with category 3 on",
// "save 12") and is shown at once. The list of actions the server has not acknowledged yet is
// sent with the example on screen; the server applies them in order, each to its own example,
// and answers with what it applied and the queue's next examples (images included), so `n`
// shows the next one without waiting. Nothing here trusts the server to be quick: keys keep
// working while it is busy, and the screen says "Saving…" until it has caught up. Images the
// server is still preparing (large photos are made in the background) are asked for again
// until they are here; the example on screen always comes with its image.
//
// Suggested categories (labeltool analyze's) show dashed: Enter accepts them all, Backspace
// dismisses them for this reviewer, a click on one accepts it and its × dismisses it. "More like
// this" (its key, when no category has it, or its button) is an action too, numbered after
// the presses before it: the server applies those first, then opens the Gallery.
//
// The image tools (ImageView, at the end) act in the browser alone: zoom, brightness,
// contrast, auto-contrast, pixelated or smooth enlarging. Their keys are never letters or
// digits, so never a category's, and never become actions.
//
// Streamlit calls the default export again with the same parent element whenever the data
// changes, so the screen lives in a WeakMap keyed by that element and listens to keys once.
// User text (ids, labels, names, comments) only ever goes into the page as textContent.

const SCREENS = new WeakMap();
const RESEND_AFTER_MS = 1500;
const ANSWER_WAIT_MS = 2000; // send again if the server has not answered a message by then
const FLASH_MS = 5000;
const MAX_LOG = 2000;
const MAX_KEPT = 150; // examples (views and images) kept in the browser beyond the window
const POLL_MS = 250; // ask again this soon while the server is still preparing images
const ORIGINALS_KEPT = 3; // full-resolution images kept (each can be megabytes)
const ORIGINAL_ASKS = 3; // times the original of one example is asked for, at most

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let screen = SCREENS.get(parentElement);
  if (!screen) {
    screen = new ReviewScreen(parentElement);
    SCREENS.set(parentElement, screen);
  }
  screen.setStateValue = setStateValue;
  screen.attach();
  screen.receive(data);
  // Streamlit may call a superseded render's cleanup while the screen is still mounted; only
  // a parent that has left the page means the screen is gone.
  return () =>
    setTimeout(() => {
      if (!parentElement.isConnected) screen.detach();
    }, 0);
}

class ReviewScreen {
  constructor(parent) {
    this.parent = parent;
    this.client = `c${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`;
    this.seq = 0; // numbers this screen's actions
    this.log = []; // every action not yet forgotten: {seq, kind, pk, ...}
    this.failed = new Map(); // seq -> the server's reason for refusing it
    this.acked = 0; // the server applied every action up to this number
    this.cache = new Map(); // pk -> {view, stamp}: the server's view and the ack it reflects
    this.images = new Map(); // pk -> {src, width, height, sourceWidth, sourceHeight}
    this.originals = new Map(); // pk -> {src, width, height} or {imageProblem}: full resolution
    this.originalAsks = new Map(); // pk -> how many times its original was asked for
    this.toolKeys = new Map(); // key -> image tool command (from the server's imageKeys)
    this.imageView = new ImageView(this);
    this.order = []; // the newest window: the anchor, then the queue's next examples
    this.previousOf = new Map(); // pk -> the queue example before it, when the server said
    this.trail = []; // the examples shown, in order; `pos` is the one on screen
    this.pos = -1;
    this.showing = null;
    this.epoch = null;
    this.run = -1;
    this.end = false;
    this.waiting = false; // `n` was pressed past the known window
    this.leaving = null; // the "more like this" action sent: the page is about to leave
    this.nonce = 0; // numbers the messages to the server, which echoes the last it read
    this.inFlight = false; // a message is on its way and the server has not answered it yet
    this.dirty = false; // something changed since that message: send once it is answered
    this.timings = []; // key press -> next example painted, in ms (read by the benchmark)
    this.onKey = (event) => this.key(event);
    this.onResize = () => {
      cancelAnimationFrame(this.resizeFrame);
      this.resizeFrame = requestAnimationFrame(() => this.imageView.draw());
    };
    this.attached = false;
  }

  attach() {
    if (this.attached) return;
    window.addEventListener("keydown", this.onKey, true);
    window.addEventListener("resize", this.onResize);
    this.attached = true;
  }

  detach() {
    window.removeEventListener("keydown", this.onKey, true);
    window.removeEventListener("resize", this.onResize);
    clearTimeout(this.resendTimer);
    clearTimeout(this.flashTimer);
    clearTimeout(this.answerTimer);
    clearTimeout(this.pollTimer);
    this.attached = false;
  }

  // --- what the server says ---------------------------------------------------------

  receive(data) {
    if (!data || typeof data.run !== "number" || data.run < this.run) return;
    this.run = data.run;
    this.data = data;
    if (this.inFlight && (data.nonce || 0) >= this.nonce) this.inFlight = false;
    this.reviewer = data.reviewer || "";
    this.categories = data.categories || [];
    this.byId = new Map(this.categories.map((c) => [c.id, c]));
    this.byKey = new Map(this.categories.filter((c) => c.key).map((c) => [c.key, c]));
    this.similarKey = data.similarKey || null; // none when a category has the key
    const acked = (data.acked || {})[this.client] || 0;
    this.acked = Math.max(this.acked, acked);
    for (const refusal of (data.refused || {})[this.client] || []) {
      if (!this.failed.has(refusal.seq)) {
        this.failed.set(refusal.seq, refusal.message);
        this.flash(`Not saved: ${refusal.message}`, true);
      }
    }
    this.toolKeys = new Map((data.imageKeys || []).map((k) => [k.key, k.command]));
    for (const view of data.examples || []) {
      if (view.src) {
        const { src, width, height, sourceWidth, sourceHeight } = view;
        this.images.set(view.pk, { src, width, height, sourceWidth, sourceHeight });
        this.imageView.prepare(view.pk);
      }
      this.cache.set(view.pk, { view, stamp: acked });
    }
    for (const [pk, full] of Object.entries(data.originals || {})) {
      if (full.src || full.imageProblem) this.originals.set(Number(pk), full);
    }
    if (this.leaving != null && this.acked >= this.leaving) {
      // The server applied "more like this" and stayed: an action before it was refused.
      this.leaving = null;
      this.flash("The Gallery was not opened: a change before it was not saved (see above).", true);
    }
    this.order = data.order || [];
    this.end = !!data.end;
    if (data.anchor != null && data.previous != null) {
      this.previousOf.set(data.anchor, data.previous);
    }
    if (data.epoch !== this.epoch) {
      // A new queue (filter changed) or a link to one example: start from the server's anchor.
      this.epoch = data.epoch;
      this.trail = data.anchor != null ? [data.anchor] : [];
      this.pos = this.trail.length - 1;
      this.showing = data.anchor ?? null;
      this.waiting = false;
      this.dirty = true; // tell the server what is on screen, once it is drawn
    } else if (this.waiting) {
      this.next();
    }
    this.forget();
    this.render();
    if (this.dirty && !this.inFlight) this.send();
    this.scheduleResend();
    this.schedulePoll();
  }

  // --- keys ---------------------------------------------------------------------------

  key(event) {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (event.key === "Escape") {
      if (isEditable(document.activeElement)) {
        document.activeElement.blur();
        event.preventDefault();
        event.stopPropagation();
      }
      return;
    }
    if (isEditable(target) || isEditable(document.activeElement)) return;
    if (!this.root || !this.root.isConnected) return;
    const tool = this.toolKeys.get(event.key);
    if (tool) {
      // How the image is drawn, in this browser only: never an action, never sent.
      event.preventDefault();
      event.stopPropagation();
      if (!event.repeat || STEPPED_TOOLS.has(tool)) this.imageView.command(tool);
      return;
    }
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const category = event.shiftKey ? null : this.byKey.get(key);
    const own = { n: 1, s: 1, p: 1, "/": 1, "=": 1, "?": 1, Enter: 1, Backspace: 1 };
    const similar = !category && !!this.similarKey && key === this.similarKey;
    if (!category && !similar && !(key in own)) return;
    // Enter on a link or button outside the screen (the sidebar's) keeps doing what it does.
    if (key === "Enter" && activatesOnEnter(document.activeElement) && !this.root.contains(document.activeElement)) {
      return;
    }
    if (event.shiftKey && key !== "?") return;
    event.preventDefault();
    event.stopPropagation();
    if (event.repeat) return; // a held key acts once
    if (this.leaving != null) return; // the Gallery is opening: no press may be lost on the way
    this.pressedAt = event.timeStamp;
    if (category) this.toggle(category.id);
    else if (key === "n") this.saveAndNext();
    else if (key === "s") this.skip();
    else if (key === "p") this.previous();
    else if (key === "/") this.focusComment();
    else if (key === "=") this.openLabel();
    else if (key === "?") this.toggleLegend();
    else if (key === "Enter") this.accept();
    else if (key === "Backspace") this.dismiss();
    else if (similar) this.moreLikeThis();
  }

  accept() {
    // Every suggested category of the example on screen not on yet, in one action: tagged
    // for this reviewer as accepted suggestions. Nothing suggested is ever tagged otherwise.
    const view = this.current();
    if (!this.ready(view)) return;
    const ids = [...new Set((view.suggestions || []).map((s) => s.category))].filter(
      (id) => this.byId.has(id) && !view.mine.has(id),
    );
    if (!ids.length) {
      this.flash(view.suggestions && view.suggestions.length ? "The suggestions are already on." : "Nothing is suggested for this example.", false);
      return;
    }
    this.act({ kind: "accept", pk: view.pk, categories: ids });
  }

  acceptOne(categoryId) {
    // A click on a suggested (dashed) category: on, as an accepted suggestion.
    const view = this.current();
    if (!this.ready(view)) return;
    this.act({ kind: "accept", pk: view.pk, categories: [categoryId] });
  }

  dismiss(categoryId = null) {
    // The suggestions still open (suggested, not on) on the example on screen, or only
    // categoryId's, said no to by this reviewer: named by their signals' kinds, never shown
    // to this reviewer again. Nothing is tagged or untagged.
    const view = this.current();
    if (!this.ready(view)) return;
    const kinds = [
      ...new Set(
        (view.suggestions || [])
          .filter((s) => this.byId.has(s.category) && !view.mine.has(s.category))
          .filter((s) => categoryId == null || s.category === categoryId)
          .map((s) => s.kind),
      ),
    ];
    if (!kinds.length) {
      this.flash(view.suggestions && view.suggestions.length ? "No suggestion is open: those left are on." : "Nothing is suggested for this example.", false);
      return;
    }
    this.act({ kind: "dismiss", pk: view.pk, kinds });
  }

  moreLikeThis() {
    // Open the Gallery on the errors most like the example on screen. An action numbered
    // after every press before it, so the server saves those first; keys wait meanwhile.
    if (this.leaving != null) return;
    const view = this.current();
    if (!view) {
      this.flash(this.waiting ? "Loading the next example…" : "No example on screen.", true);
      return;
    }
    this.act({ kind: "similar", pk: view.pk }, { quiet: true });
    this.leaving = this.seq;
    this.flash("Opening the Gallery on the errors most like this one…", false);
    this.render();
  }

  toggle(categoryId) {
    const view = this.current();
    if (!this.ready(view)) return;
    const on = !view.mine.has(categoryId);
    this.act({ kind: "tag", pk: view.pk, category: categoryId, on });
  }

  saveAndNext() {
    const view = this.current();
    if (this.waiting) return this.ready(view);
    if (!view) return this.next();
    if (view.reviewable) {
      if (!this.ready(view)) return;
      this.act({ kind: "save", pk: view.pk }, { quiet: true });
    }
    this.next();
  }

  skip() {
    const view = this.current();
    if (this.waiting) return this.ready(view);
    if (!view) return this.next();
    if (view.reviewable) {
      if (!this.ready(view)) return;
      this.act({ kind: "skip", pk: view.pk }, { quiet: true });
    }
    this.next();
  }

  ready(view) {
    if (!view) {
      this.flash(this.waiting ? "Loading the next example…" : "No example on screen.", true);
      return false;
    }
    if (!this.reviewer) {
      this.flash("Enter your name as Reviewer in the sidebar first: every tag records who made it.", true);
      return false;
    }
    if (!view.reviewable) {
      this.flash(`This example is ${view.standing}: only misclassified dev examples are tagged.`, true);
      return false;
    }
    return true;
  }

  act(fields, { quiet = false } = {}) {
    const action = { seq: ++this.seq, reviewer: this.reviewer, ...fields };
    this.log.push(action);
    if (!quiet) this.render();
    this.send();
  }

  next() {
    let following = null;
    if (this.pos < this.trail.length - 1) {
      following = this.trail[this.pos + 1];
    } else {
      const at = this.order.indexOf(this.showing);
      if (at >= 0 && at + 1 < this.order.length) following = this.order[at + 1];
      else if (this.showing == null && this.order.length) following = this.order[0];
    }
    if (following != null && this.cache.has(following)) {
      if (this.pos === this.trail.length - 1) this.trail.push(following);
      this.pos += 1;
      this.waiting = false;
      this.show(following);
      return;
    }
    const at = this.order.indexOf(this.showing);
    if (this.end && at === this.order.length - 1) {
      // The queue has nothing after this example: say so instead of waiting.
      this.waiting = false;
      if (this.pos === this.trail.length - 1) this.trail.push(null);
      this.pos = this.trail.length - 1;
      this.show(null);
      return;
    }
    this.waiting = true; // `showing` stays the example left, so the server anchors there
    this.render();
    this.send();
  }

  previous() {
    if (this.waiting) {
      this.waiting = false;
      this.show(this.showing);
      return;
    }
    if (this.pos > 0) {
      this.pos -= 1;
      this.waiting = false;
      this.show(this.trail[this.pos]);
      return;
    }
    const before = this.previousOf.get(this.showing);
    if (before != null && this.cache.has(before)) {
      this.trail.unshift(before);
      this.pos = 0;
      this.show(before);
      return;
    }
    this.flash("Nothing before this example in the queue.", false);
  }

  show(pk) {
    this.showing = pk;
    this.render();
    this.send();
  }

  focusComment() {
    const view = this.current();
    if (!view || !this.ui) return;
    this.ui.comment.focus();
  }

  openLabel() {
    const view = this.current();
    if (!this.ready(view) || !this.ui) return;
    this.ui.labelInput.value = view.corrected || "";
    this.ui.labelBox.hidden = false;
    this.suggest();
    this.ui.labelInput.focus();
    this.ui.labelInput.select();
  }

  toggleLegend() {
    if (this.ui) this.ui.legend.hidden = !this.ui.legend.hidden;
  }

  // --- the browser's half of the conversation ----------------------------------------

  pending() {
    return this.log.filter((a) => a.seq > this.acked && !this.failed.has(a.seq));
  }

  send() {
    // One message at a time: each one reruns the script, and a rerun requested while another
    // runs interrupts it, so a message per key would starve the server of finished reruns at
    // a fast typist's pace. Keys pressed meanwhile go with the next message.
    if (!this.setStateValue) return;
    if (this.inFlight) {
      this.dirty = true;
      return;
    }
    this.inFlight = true;
    this.dirty = false;
    clearTimeout(this.answerTimer);
    this.answerTimer = setTimeout(() => {
      if (this.inFlight) {
        this.inFlight = false;
        this.send();
      }
    }, ANSWER_WAIT_MS);
    this.setStateValue("screen", {
      client: this.client,
      epoch: this.epoch,
      showing: this.showing,
      actions: this.pending(),
      have: [...this.images.keys()],
      original: this.imageView.neededOriginal(),
      nonce: ++this.nonce,
    });
  }

  askOriginal(pk) {
    // The example on screen is zoomed past its review image: ask the server for its original
    // (every message asks while it is needed; this sends one when nothing else would).
    if (this.inFlight) return; // its answer draws the image again, and asks then if need be
    const last = ((this.data && this.data.originals) || {})[pk];
    if (last && last.preparing) return; // the poll asks again
    const asked = this.originalAsks.get(pk) || 0;
    if (asked >= ORIGINAL_ASKS) return;
    this.originalAsks.set(pk, asked + 1);
    this.send();
  }

  preparing() {
    // Images of the last window the server was still making, and not here yet.
    if (!this.data) return 0;
    const views = (this.data.examples || []).filter((v) => v.preparing && !this.images.has(v.pk));
    const originals = Object.entries(this.data.originals || {}).filter(
      ([pk, full]) => full.preparing && !this.originals.has(Number(pk)),
    );
    return views.length + originals.length;
  }

  schedulePoll() {
    // Ask again, on a message of its own, for images the server was still preparing.
    clearTimeout(this.pollTimer);
    if (!this.preparing()) return;
    this.pollTimer = setTimeout(() => {
      if (this.attached && !this.inFlight && this.preparing()) this.send();
    }, POLL_MS);
  }

  scheduleResend() {
    clearTimeout(this.resendTimer);
    if (!this.pending().length) return;
    const acked = this.acked;
    this.resendTimer = setTimeout(() => {
      if (this.attached && this.acked === acked && this.pending().length) this.send();
    }, RESEND_AFTER_MS);
  }

  forget() {
    // Keep the log short: an acknowledged action is no longer needed once every cached view
    // of its example already reflects it.
    this.log = this.log.filter((a) => {
      if (a.seq > this.acked) return true;
      const entry = this.cache.get(a.pk);
      return entry && entry.stamp < a.seq;
    });
    if (this.log.length > MAX_LOG) this.log = this.log.slice(-MAX_LOG);
    // Keep memory bounded on a long session: forget the oldest examples outside the window
    // and the recent trail (a forgotten one comes back from the server if `p` reaches it).
    const keep = new Set([...this.order, ...this.trail.slice(-50)]);
    for (const store of [this.images, this.cache]) {
      for (const pk of store.keys()) {
        if (store.size <= MAX_KEPT) break;
        if (!keep.has(pk)) store.delete(pk);
      }
    }
    for (const pk of this.originals.keys()) {
      if (this.originals.size <= ORIGINALS_KEPT) break;
      if (pk !== this.showing) this.originals.delete(pk);
    }
    this.imageView.forget(this.images);
  }

  // --- what is on screen ----------------------------------------------------------------

  current() {
    // While waiting for the next example nothing is on screen, so no key can act on the
    // example being left.
    return this.showing == null || this.waiting ? null : this.view(this.showing);
  }

  view(pk) {
    const entry = this.cache.get(pk);
    if (!entry) return null;
    const base = entry.view;
    const view = {
      ...base,
      mine: new Set((base.tags || {})[this.reviewer] || []),
      comment: base.comment || "",
      corrected: base.corrected || null,
      state: base.state,
    };
    for (const a of this.log) {
      if (a.pk !== pk || a.seq <= entry.stamp || this.failed.has(a.seq)) continue;
      if (a.kind === "tag" || a.kind === "accept") {
        const ids = a.kind === "tag" ? [a.category] : a.categories || [];
        for (const id of ids) {
          if (a.on === false) view.mine.delete(id);
          else view.mine.add(id);
          const category = this.byId.get(id);
          if (a.on !== false && category && category.incorrectLabel && !view.corrected) {
            view.corrected = view.prediction;
          }
        }
      } else if (a.kind === "dismiss") {
        const kinds = new Set(a.kinds || []);
        view.suggestions = (view.suggestions || []).filter((s) => !kinds.has(s.kind));
      } else if (a.kind === "save") view.state = "reviewed";
      else if (a.kind === "skip" && view.state === "unreviewed") view.state = "skipped";
      else if (a.kind === "comment") view.comment = a.text || "";
      else if (a.kind === "corrected_label") view.corrected = a.text || null;
    }
    return view;
  }

  flash(message, warn) {
    if (!this.root) return;
    const box = this.root.querySelector(".lt-rs-flash");
    box.textContent = message;
    box.hidden = false;
    box.classList.toggle("lt-rs-warn", !!warn);
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => (box.hidden = true), FLASH_MS);
  }

  render() {
    this.root = this.parent.querySelector(".lt-rs");
    if (!this.root) return;
    if (!this.ui || !this.ui.body.isConnected) this.build();
    const pending = this.pending().length;
    this.root.dataset.saving = pending ? "true" : "false";
    this.root.dataset.showing = this.showing == null ? "" : String(this.showing);
    this.root.dataset.imagesHeld = String(this.order.filter((pk) => this.images.has(pk)).length);
    this.root.dataset.preparing = String(this.preparing());
    const status = this.root.querySelector(".lt-rs-status");
    status.textContent = pending
      ? `Saving… (${pending} change${pending === 1 ? "" : "s"})`
      : "All changes saved";
    status.classList.toggle("lt-rs-busy", pending > 0);

    const view = this.current();
    this.ui.example.hidden = !view;
    this.ui.empty.hidden = !!view;
    this.root.dataset.exampleId = view ? view.id : "";
    if (view) keepInUrl(view.id);
    if (!view) {
      this.ui.empty.textContent = this.waiting
        ? "Loading the next example…"
        : `Nothing left in this queue (${this.data ? this.data.queueCount : 0} examples match ` +
          "the filter). Change the filter in the sidebar to see others, or read the Ceiling report.";
      return;
    }
    const ui = this.ui;
    ui.id.textContent = view.id;
    ui.state.textContent = view.state;
    ui.standing.hidden = view.standing === "in the queue";
    ui.standing.textContent = standingNote(view);
    ui.pair.textContent = "";
    ui.pair.append(
      strong("True label "), code(view.label), strong(" → predicted "), code(view.prediction),
      text(` (${view.pair})`),
    );
    ui.confidence.textContent =
      view.confidence == null ? "" : `Confidence ${(100 * view.confidence).toFixed(1)}%`;
    ui.top.textContent = "";
    for (const [name, p] of view.top || []) {
      const row = el("div", "lt-rs-prob");
      const bar = el("span", "lt-rs-bar");
      bar.style.width = `${Math.round(100 * p)}%`;
      row.append(el("span", "lt-rs-prob-name", name), el("span", "lt-rs-bar-box", bar),
        el("span", "lt-rs-prob-value", `${(100 * p).toFixed(1)}%`));
      ui.top.append(row);
    }
    this.imageView.draw();

    ui.categories.textContent = "";
    const others = othersOf(view, this.reviewer);
    const reasons = reasonsOf(view);
    let open = 0; // suggestions not on yet
    for (const category of this.categories) {
      const on = view.mine.has(category.id);
      const suggested = reasons.has(category.id) && !on;
      if (suggested) open += 1;
      const button = el("button", "lt-rs-cat");
      button.type = "button";
      button.dataset.category = category.name;
      button.dataset.on = on ? "true" : "false";
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.title = category.description || "";
      button.disabled = !view.reviewable || !this.reviewer;
      button.style.setProperty("--lt-cat", category.colour);
      button.dataset.suggested = suggested ? "true" : "false";
      button.append(
        el("span", "lt-rs-key", category.key || "·"),
        el("span", "lt-rs-check", on ? "✓" : ""),
        el("span", "lt-rs-cat-name", category.name),
      );
      if (suggested) {
        const badge = el("span", "lt-rs-badge", "suggested");
        badge.title = "Suggested by labeltool analyze; not saved until you accept it (Enter)";
        button.append(badge);
      }
      if (others.has(category.id)) {
        button.append(el("span", "lt-rs-others", `also ${others.get(category.id).join(", ")}`));
      }
      if (suggested) {
        // A click accepts this one suggestion; the × beside it dismisses it.
        button.title = `${category.description ? `${category.description}\n` : ""}Click to accept this suggestion`;
        button.addEventListener("click", () => this.acceptOne(category.id));
        const no = el("button", "lt-rs-dismiss", "×");
        no.type = "button";
        no.dataset.category = category.name;
        no.disabled = button.disabled;
        no.title = "Dismiss this suggestion (not shown to you again)";
        no.setAttribute("aria-label", `Dismiss the suggestion ${category.name}`);
        no.addEventListener("click", () => this.dismiss(category.id));
        const row = el("div", "lt-rs-cat-row");
        row.append(button, no);
        ui.categories.append(row);
      } else {
        button.addEventListener("click", () => this.toggle(category.id));
        ui.categories.append(button);
      }
      if (reasons.has(category.id)) {
        const reason = el("div", "lt-rs-reason", reasons.get(category.id).join("; "));
        reason.dataset.category = category.name;
        ui.categories.append(reason);
      }
    }
    ui.suggestHint.hidden = !open;
    ui.suggestHint.textContent = open
      ? `${open} suggested (dashed): Enter accepts, Backspace dismisses ${open === 1 ? "it" : "them"} ` +
        "(a click accepts one, its × dismisses it); nothing is saved until you accept."
      : "";
    if (!this.categories.length) {
      ui.categories.append(el("p", "lt-rs-hint", "No categories yet: add one below or on the Categories page."));
    }
    if (document.activeElement !== ui.comment) ui.comment.value = view.comment;
    ui.corrected.textContent = view.corrected || "—";
    ui.save.disabled = !this.reviewer && view.reviewable;
    ui.similar.textContent = `More like this${this.similarKey ? ` (${this.similarKey})` : ""}`;
    ui.similar.title = "Open the Gallery on the errors most like this one (your changes are saved first)";
    ui.similar.disabled = this.leaving != null;
    this.renderLegend();
  }

  build() {
    const body = this.root.querySelector(".lt-rs-body");
    body.textContent = "";
    const ui = { body };
    ui.empty = el("div", "lt-rs-empty");
    ui.example = el("div", "lt-rs-example");
    body.append(ui.empty, ui.example);

    const head = el("div", "lt-rs-head");
    ui.id = el("code", "lt-rs-id");
    ui.id.dataset.testid = "review-example-id";
    ui.state = el("span", "lt-rs-state");
    head.append(el("span", "lt-rs-title", "Example "), ui.id, text(" · "), ui.state);
    ui.standing = el("div", "lt-rs-standing");
    ui.standing.setAttribute("role", "note");

    const columns = el("div", "lt-rs-columns");
    const left = el("div", "lt-rs-left");
    ui.columns = columns;
    ui.left = left;
    this.imageView.build(left, ui);

    const right = el("div", "lt-rs-right");
    ui.right = right;
    ui.pair = el("div", "lt-rs-pair");
    ui.confidence = el("div", "lt-rs-confidence");
    ui.top = el("div", "lt-rs-top");
    ui.categories = el("div", "lt-rs-categories");
    ui.categories.setAttribute("aria-label", "Error categories");
    ui.suggestHint = el("div", "lt-rs-hint lt-rs-suggest-hint");
    ui.suggestHint.hidden = true;

    const labelRow = el("div", "lt-rs-label-row");
    ui.corrected = el("code", "lt-rs-corrected");
    const labelButton = el("button", "lt-rs-small", "Set (=)");
    labelButton.type = "button";
    labelButton.addEventListener("click", () => this.openLabel());
    labelRow.append(el("span", "lt-rs-field", "Corrected label "), ui.corrected, labelButton);
    ui.labelBox = el("div", "lt-rs-label-box");
    ui.labelBox.hidden = true;
    ui.labelInput = el("input", "lt-rs-label-input");
    ui.labelInput.type = "text";
    ui.labelInput.placeholder = "type a class; Enter sets it, empty clears, Esc cancels";
    ui.labelInput.setAttribute("aria-label", "Corrected label");
    ui.suggestions = el("div", "lt-rs-suggestions");
    ui.labelBox.append(ui.labelInput, ui.suggestions);
    ui.labelInput.addEventListener("input", () => this.suggest());
    ui.labelInput.addEventListener("keydown", (event) => this.labelKey(event));
    ui.labelInput.addEventListener("blur", () => (ui.labelBox.hidden = true));

    ui.comment = el("textarea", "lt-rs-comment");
    ui.comment.rows = 2;
    ui.comment.placeholder = "What do you notice? (/ to type here; Esc or Ctrl+Enter saves)";
    ui.comment.setAttribute("aria-label", "Comment");
    ui.comment.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        ui.comment.blur();
      }
    });
    ui.comment.addEventListener("blur", () => this.saveComment());

    const buttons = el("div", "lt-rs-buttons");
    ui.similar = el("button", "lt-rs-small lt-rs-similar", "More like this");
    ui.similar.type = "button";
    ui.similar.dataset.testid = "review-more-like-this";
    ui.similar.addEventListener("click", () => this.moreLikeThis());
    const back = el("button", "lt-rs-button", "← Previous (p)");
    const skip = el("button", "lt-rs-button", "Skip (s)");
    ui.save = el("button", "lt-rs-button lt-rs-primary", "Save & next (n)");
    for (const [button, handler] of [[back, () => this.previous()], [skip, () => this.skip()],
      [ui.save, () => this.saveAndNext()]]) {
      button.type = "button";
      button.addEventListener("click", handler);
      buttons.append(button);
    }
    ui.legend = el("div", "lt-rs-legend");
    right.append(ui.pair, ui.confidence, ui.top, ui.similar, el("div", "lt-rs-field", "Error categories (press the key to toggle)"),
      ui.suggestHint, ui.categories, labelRow, ui.labelBox, ui.comment, buttons, ui.legend);
    columns.append(left, right);
    ui.example.append(head, ui.standing, columns);
    this.ui = ui;
  }

  renderLegend() {
    const legend = this.ui.legend;
    legend.textContent = "";
    const parts = [];
    for (const c of this.categories) if (c.key) parts.push([c.key, c.name]);
    for (const [key, words] of this.data ? this.data.screenKeys : []) parts.push([key, words]);
    legend.append(el("span", "lt-rs-field", "Keys: "));
    parts.forEach(([key, words], i) => {
      if (i) legend.append(text(" · "));
      legend.append(el("kbd", "", key), text(` ${words}`));
    });
    const image = el("div", "lt-rs-legend-image");
    image.append(el("span", "lt-rs-field", "Image (never saved): "));
    (this.data ? this.data.imageKeys || [] : []).forEach(({ key, words }, i) => {
      if (i) image.append(text(" · "));
      image.append(el("kbd", "", key), text(` ${words}`));
    });
    legend.append(image);
    if (this.data && this.data.reservedNote) legend.append(el("div", "lt-rs-hint", this.data.reservedNote));
  }

  saveComment() {
    const view = this.current();
    if (!view || !this.ui) return;
    const value = this.ui.comment.value.trim();
    if (value === (view.comment || "").trim()) return;
    if (!this.reviewer) {
      this.flash("Enter your name as Reviewer in the sidebar first.", true);
      return;
    }
    this.act({ kind: "comment", pk: view.pk, text: value });
  }

  suggest() {
    const typed = this.ui.labelInput.value.trim().toLowerCase();
    const view = this.current();
    const classes = ((this.data && this.data.classes) || []).filter((c) => !view || c !== view.label);
    this.matches = classes.filter((c) => c.toLowerCase().startsWith(typed));
    if (!this.matches.length) this.matches = classes.filter((c) => c.toLowerCase().includes(typed));
    this.ui.suggestions.textContent = "";
    this.matches.slice(0, 12).forEach((name, i) => {
      const chip = el("span", i === 0 ? "lt-rs-suggestion lt-rs-first" : "lt-rs-suggestion", name);
      chip.addEventListener("mousedown", (event) => {
        event.preventDefault();
        this.setLabel(name);
      });
      this.ui.suggestions.append(chip);
    });
    if (typed && !this.matches.length) this.ui.suggestions.append(el("span", "lt-rs-hint", "no class matches"));
  }

  labelKey(event) {
    if (event.key === "Enter") {
      event.preventDefault();
      const typed = this.ui.labelInput.value.trim();
      if (!typed) return this.setLabel(null);
      const exact = this.matches.find((c) => c.toLowerCase() === typed.toLowerCase());
      const chosen = exact || this.matches[0];
      if (chosen) this.setLabel(chosen);
      else this.flash(`'${typed}' is not one of the project's classes.`, true);
    }
  }

  setLabel(name) {
    const view = this.current();
    this.ui.labelBox.hidden = true;
    this.ui.labelInput.blur();
    if (!this.ready(view)) return;
    if ((view.corrected || null) === (name || null)) return;
    this.act({ kind: "corrected_label", pk: view.pk, text: name });
  }

  notePaint(pk) {
    const pressed = this.pressedAt;
    if (pressed == null) return;
    this.pressedAt = null;
    const img = this.ui.img;
    const done = () =>
      requestAnimationFrame(() => {
        if (img.dataset.pk === String(pk)) this.timings.push(performance.now() - pressed);
        window.__labeltoolReviewTimings = this.timings;
      });
    img.decode().then(done, done);
  }
}

// --- the image tools -------------------------------------------------------------------
//
// Zoom, brightness, contrast, auto-contrast and pixelated or smooth enlarging are CSS on the
// <img> (its size, `filter`, `image-rendering`): instant, no rerun, nothing sent but, zoomed
// past a photo's review image, a request for its original. The settings stay as they are from
// one example to the next, and in localStorage across visits, until reset. While any of them
// changes how the pixels look, the image is framed and a banner says what is on, so nobody
// tags "dark" or "blurry" on an adjusted image by mistake.
//
// Zoom: "fit" enlarges an image smaller than data.imageSide (an 8x8 digit) by a whole factor
// to at least that side, pixelated, and fits larger ones in data.fitSide (and beside the
// categories), never enlarged; 100% is one image pixel per CSS pixel (an 8x8 digit is 8 px:
// the model's view), 200% two. `+` and `-` go to the next larger or smaller of the three for
// the image on screen. A zoomed image pans by scrolling or dragging.

const IMAGE_SETTINGS_KEY = "labeltool.reviewImage.v1";
const IMAGE_DEFAULTS = Object.freeze({
  zoom: "fit",
  brightness: 0, // steps of STEP_FACTOR
  contrast: 0,
  auto: false,
  smoothing: "default", // or "pixelated" / "smooth"; the default depends on the image's size
});
const ZOOM_LEVELS = [["fit", null], ["100", 1], ["200", 2]];
const STEPS = 8; // brightness and contrast go 8 steps each way...
const STEP_FACTOR = 2 ** 0.25; // ... of 2^(1/4): from 25% to 400%
const STEPPED_TOOLS = new Set(["brighter", "darker", "moreContrast", "lessContrast", "zoomIn", "zoomOut"]);
const AUTO_CUTOFF = 0.005; // auto-contrast ignores the darkest and the brightest 0.5% of pixels
const LEVELS_SIDE = 256; // ... read from the image shrunk to at most this side

class ImageView {
  constructor(screen) {
    this.screen = screen;
    this.settings = loadImageSettings();
    this.levels = new Map(); // pk -> {low, high} of its pixels' brightness, or null (flat)
    this.measuring = new Set();
    this.pk = null; // the example drawn last
    this.drag = null;
  }

  build(left, ui) {
    const tools = el("div", "lt-rs-tools");
    tools.setAttribute("role", "toolbar");
    tools.setAttribute("aria-label", "Image tools (they change only how the image is drawn)");
    const zoom = el("span", "lt-rs-zoom");
    zoom.setAttribute("role", "group");
    zoom.setAttribute("aria-label", "Zoom");
    ui.zoomButtons = ZOOM_LEVELS.map(([level]) => {
      const words = level === "fit" ? "Fit" : `${level}%`;
      const button = this.toolButton(words, ["zoomIn", "zoomOut"], () => this.set({ ...this.settings, zoom: level }));
      button.dataset.zoom = level;
      zoom.append(button);
      return button;
    });
    ui.scale = el("span", "lt-rs-scale");
    ui.brightness = this.slider("Brightness", ["darker", "brighter"], "brightness");
    ui.contrast = this.slider("Contrast", ["lessContrast", "moreContrast"], "contrast");
    ui.auto = this.toolButton("Auto-contrast", ["autoContrast"], () => this.command("autoContrast"));
    ui.smoothing = this.toolButton("Enlarge: pixelated", ["smoothing"], () => this.command("smoothing"));
    ui.reset = this.toolButton("Reset", ["resetImage"], () => this.command("resetImage"));
    tools.append(zoom, ui.scale, ui.brightness.label, ui.contrast.label, ui.auto, ui.smoothing, ui.reset);

    ui.adjusted = el("div", "lt-rs-adjusted");
    ui.adjusted.setAttribute("role", "status");
    ui.adjusted.hidden = true;
    ui.stage = el("div", "lt-rs-stage");
    ui.stage.tabIndex = 0; // arrow keys pan a zoomed image once it has the focus
    ui.stage.setAttribute("aria-label", "The example's image: scroll or drag to pan when zoomed");
    ui.img = el("img", "lt-rs-img");
    ui.img.alt = "the example's image";
    ui.img.draggable = false;
    ui.stage.append(ui.img);
    ui.imgProblem = el("div", "lt-rs-img-problem");
    ui.caption = el("div", "lt-rs-caption");
    left.append(tools, ui.adjusted, ui.stage, ui.imgProblem, ui.caption);
    this.listenForDrags(ui.stage);
  }

  keysOf(commands) {
    // The keys that run `commands`, as the server's imageKeys say, for hints: "[ and ]".
    const keys = ((this.screen.data && this.screen.data.imageKeys) || []).filter((k) => commands.includes(k.command));
    return keys.map((k) => k.key).join(" and ");
  }

  toolButton(words, commands, handler) {
    const button = el("button", "lt-rs-tool", words);
    button.type = "button";
    button.title = `${words.replace(/:.*/, "")} (key: ${this.keysOf(commands)})`;
    button.addEventListener("click", handler);
    return button;
  }

  slider(words, commands, setting) {
    const label = el("label", "lt-rs-slider");
    const input = el("input");
    input.type = "range";
    input.min = String(-STEPS);
    input.max = String(STEPS);
    input.step = "1";
    input.setAttribute("aria-label", words);
    input.title = `${words} (keys: ${this.keysOf(commands)})`;
    const output = el("output", "lt-rs-slider-value");
    input.addEventListener("input", () => this.set({ ...this.settings, [setting]: Number(input.value) }));
    label.append(text(`${words} `), input, output);
    return { label, input, output };
  }

  // --- settings ---------------------------------------------------------------------------

  command(name) {
    const now = this.settings;
    const step = (value, by) => Math.max(-STEPS, Math.min(STEPS, value + by));
    if (name === "zoomIn" || name === "zoomOut") {
      const zoom = this.nextZoom(name === "zoomIn" ? 1 : -1);
      if (zoom == null) this.screen.flash(`Already at the ${name === "zoomIn" ? "largest" : "smallest"} zoom.`, false);
      else this.set({ ...now, zoom });
    } else if (name === "brighter") this.set({ ...now, brightness: step(now.brightness, 1) });
    else if (name === "darker") this.set({ ...now, brightness: step(now.brightness, -1) });
    else if (name === "moreContrast") this.set({ ...now, contrast: step(now.contrast, 1) });
    else if (name === "lessContrast") this.set({ ...now, contrast: step(now.contrast, -1) });
    else if (name === "autoContrast") this.set({ ...now, auto: !now.auto });
    else if (name === "smoothing") {
      const other = this.rendering() === "pixelated" ? "smooth" : "pixelated";
      this.set({ ...now, smoothing: other === this.defaultRendering() ? "default" : other });
    } else if (name === "resetImage") this.set({ ...IMAGE_DEFAULTS });
  }

  set(settings) {
    const centre = this.centre();
    this.settings = settings;
    saveImageSettings(settings);
    this.draw(centre);
  }

  nextZoom(direction) {
    // The zoom of the three whose scale is the next one up (or down) for the image on screen.
    const info = this.info();
    const levels = ZOOM_LEVELS.map(([level]) => level);
    if (!info) {
      const at = levels.indexOf(this.settings.zoom) + direction;
      return at >= 0 && at < levels.length ? levels[at] : null;
    }
    const fit = this.geometry(info).fitScale;
    const scale = (level) => (level === "fit" ? fit : Number(level) / 100);
    const now = scale(this.settings.zoom);
    const further = levels.filter((level) => direction * (scale(level) - now) > 1e-9);
    further.sort((a, b) => Math.abs(scale(a) - now) - Math.abs(scale(b) - now));
    return further.length ? further[0] : null;
  }

  rendering() {
    return this.settings.smoothing === "default" ? this.defaultRendering() : this.settings.smoothing;
  }

  defaultRendering() {
    // Pixelated for small images (each pixel the model saw stays a square), smooth for photos.
    const info = this.info();
    return !info || this.geometry(info).small ? "pixelated" : "smooth";
  }

  adjustments() {
    // What makes the image look unlike the file, in words (zoom does not).
    const { brightness, contrast, auto, smoothing } = this.settings;
    const list = [];
    if (brightness) list.push(`brightness ${percent(STEP_FACTOR ** brightness)}`);
    if (contrast) list.push(`contrast ${percent(STEP_FACTOR ** contrast)}`);
    if (auto) list.push("auto-contrast");
    if (smoothing !== "default") list.push(`${smoothing} enlarging`);
    return list;
  }

  filter(levels) {
    const { brightness, contrast, auto } = this.settings;
    const parts = [];
    if (auto && levels) {
      // brightness(1/(hi+lo)) then contrast((hi+lo)/(hi-lo)) maps lo to black and hi to white.
      const { low, high } = levels;
      parts.push(`brightness(${round4(1 / (high + low))})`, `contrast(${round4((high + low) / (high - low))})`);
    }
    if (brightness) parts.push(`brightness(${round4(STEP_FACTOR ** brightness)})`);
    if (contrast) parts.push(`contrast(${round4(STEP_FACTOR ** contrast)})`);
    return parts.length ? parts.join(" ") : "none";
  }

  // --- what the image needs -------------------------------------------------------------

  info() {
    const view = this.screen.current();
    return view ? this.screen.images.get(view.pk) : null;
  }

  geometry(info) {
    const { imageSide = 384, fitSide = 768 } = this.screen.data || {};
    const width = info.sourceWidth || info.width;
    const height = info.sourceHeight || info.height;
    const long = Math.max(width, height, 1);
    const box = this.box(fitSide, imageSide);
    const small = long < imageSide;
    let fitScale;
    if (small) fitScale = Math.max(1, Math.min(Math.ceil(imageSide / long), Math.floor(box / long)));
    else fitScale = Math.min(1, Math.min(fitSide, box) / long);
    const level = ZOOM_LEVELS.find(([name]) => name === this.settings.zoom);
    const scale = level && level[1] ? level[1] : fitScale;
    return {
      small,
      fitScale,
      scale,
      sourceWidth: width,
      sourceHeight: height,
      fitWidth: Math.round(width * fitScale),
      fitHeight: Math.round(height * fitScale),
      width: width * scale,
      height: height * scale,
    };
  }

  box(fitSide, imageSide) {
    // The widest the image may be at "fit": beside the categories if that leaves imageSide.
    const ui = this.screen.ui;
    const width = ui && ui.columns ? ui.columns.clientWidth : 0;
    if (!width) return fitSide;
    const gap = parseFloat(getComputedStyle(ui.columns).columnGap) || 0;
    const right = getComputedStyle(ui.right);
    const beside = width - gap - Math.max(parseFloat(right.minWidth) || 0, parseFloat(right.flexBasis) || 0);
    return beside >= imageSide ? beside : width;
  }

  needsOriginal(info, geometry) {
    // Drawn larger than the review image the server sent, which is smaller than the photo.
    return info.sourceWidth > info.width && geometry.width > info.width + 0.5;
  }

  neededOriginal() {
    const view = this.screen.current();
    const info = view && this.screen.images.get(view.pk);
    if (!info || this.screen.originals.has(view.pk)) return null;
    return this.needsOriginal(info, this.geometry(info)) ? view.pk : null;
  }

  prepare(pk) {
    // A new image is here: measure it now if auto-contrast is on, so it shows stretched.
    if (this.settings.auto) this.levelsOf(pk);
  }

  levelsOf(pk) {
    if (this.levels.has(pk)) return this.levels.get(pk);
    const info = this.screen.images.get(pk);
    if (info && !this.measuring.has(pk)) {
      this.measuring.add(pk);
      const probe = new Image();
      probe.src = info.src;
      probe
        .decode()
        .then(() => measureLevels(probe), () => null)
        .then((levels) => {
          this.measuring.delete(pk);
          this.levels.set(pk, levels);
          if (this.pk === pk) this.draw();
        });
    }
    return undefined; // not measured yet
  }

  forget(images) {
    for (const pk of this.levels.keys()) if (!images.has(pk)) this.levels.delete(pk);
  }

  // --- drawing ----------------------------------------------------------------------------

  draw(centre) {
    const ui = this.screen.ui;
    const view = this.screen.current();
    if (!ui || !view) return;
    const info = this.screen.images.get(view.pk);
    const moved = this.pk !== view.pk;
    this.pk = view.pk;
    const adjusted = this.adjustments();
    ui.adjusted.hidden = !adjusted.length;
    ui.adjusted.textContent = adjusted.length
      ? `Adjusted: ${adjusted.join(" · ")}. This is not the image as it is (${this.keysOf(["resetImage"])} or Reset shows it).`
      : "";
    this.drawTools();
    if (!info) {
      ui.stage.hidden = true;
      ui.img.dataset.pk = "";
      ui.imgProblem.hidden = false;
      ui.imgProblem.dataset.state = view.imageProblem ? "problem" : "preparing";
      ui.imgProblem.textContent = view.imageProblem ? `🚫 ${view.imageProblem}` : "Preparing the image…";
      ui.scale.textContent = "";
      ui.caption.textContent = view.image;
      return;
    }
    ui.stage.hidden = false;
    ui.imgProblem.hidden = true;
    const geometry = this.geometry(info);
    const needsFull = this.needsOriginal(info, geometry);
    const full = needsFull ? this.screen.originals.get(view.pk) : null;
    const useFull = !!(full && full.src);
    const which = `${view.pk}:${useFull ? "original" : "review"}`;
    if (ui.img.dataset.which !== which) {
      ui.img.src = useFull ? full.src : info.src;
      ui.img.dataset.which = which;
    }
    if (ui.img.dataset.pk !== String(view.pk)) {
      ui.img.dataset.pk = String(view.pk);
      this.screen.notePaint(view.pk);
    }
    const rendering = this.rendering();
    const levels = this.settings.auto ? this.levelsOf(view.pk) : null;
    Object.assign(ui.img.style, {
      width: `${geometry.width}px`,
      height: `${geometry.height}px`,
      imageRendering: rendering === "pixelated" ? "pixelated" : "auto",
      filter: this.filter(levels),
      visibility: levels === undefined ? "hidden" : "", // shown once auto-contrast is measured
    });
    ui.stage.style.width = `${geometry.fitWidth}px`;
    ui.stage.style.height = `${geometry.fitHeight}px`;
    ui.left.style.width = `${Math.max(geometry.fitWidth, (this.screen.data || {}).imageSide || 384)}px`;
    Object.assign(ui.stage.dataset, {
      zoom: this.settings.zoom,
      scale: String(geometry.scale),
      rendering,
      adjusted: adjusted.length ? "true" : "false",
      full: !needsFull ? "not needed" : useFull ? "shown" : full && full.imageProblem ? "unavailable" : "loading",
    });
    ui.scale.textContent = `shown at ${geometry.scale >= 4 ? `${Math.round(geometry.scale)}×` : percent(geometry.scale)}`;
    const size = `${geometry.sourceWidth} × ${geometry.sourceHeight} px`;
    let note = "";
    if (needsFull && !useFull) {
      note = full && full.imageProblem ? ` · full resolution unavailable: ${full.imageProblem}` : " · loading full resolution…";
    }
    ui.caption.textContent = `${view.image} · ${size}${note}`;
    ui.stage.dataset.overflow = this.overflowing() ? "true" : "false";
    if (moved) this.scrollTo({ x: 0.5, y: 0.5 });
    else if (centre) this.scrollTo(centre);
    if (needsFull && !full) this.screen.askOriginal(view.pk);
  }

  drawTools() {
    const ui = this.screen.ui;
    const { zoom, brightness, contrast, auto } = this.settings;
    for (const button of ui.zoomButtons) button.setAttribute("aria-pressed", String(button.dataset.zoom === zoom));
    for (const [slider, value] of [[ui.brightness, brightness], [ui.contrast, contrast]]) {
      slider.input.value = String(value);
      slider.output.textContent = percent(STEP_FACTOR ** value);
      slider.label.dataset.changed = value ? "true" : "false";
    }
    ui.auto.setAttribute("aria-pressed", String(auto));
    const rendering = this.rendering();
    ui.smoothing.textContent = `Enlarge: ${rendering}`;
    ui.smoothing.setAttribute("aria-pressed", String(this.settings.smoothing !== "default"));
  }

  // --- panning ----------------------------------------------------------------------------

  overflowing() {
    const stage = this.screen.ui.stage;
    return stage.scrollWidth > stage.clientWidth + 1 || stage.scrollHeight > stage.clientHeight + 1;
  }

  centre() {
    // The point of the image at the middle of the stage, as fractions of its size.
    const stage = this.screen.ui && this.screen.ui.stage;
    if (!stage || stage.hidden || !stage.scrollWidth) return null;
    return {
      x: (stage.scrollLeft + stage.clientWidth / 2) / stage.scrollWidth,
      y: (stage.scrollTop + stage.clientHeight / 2) / stage.scrollHeight,
    };
  }

  scrollTo({ x, y }) {
    const stage = this.screen.ui.stage;
    stage.scrollLeft = x * stage.scrollWidth - stage.clientWidth / 2;
    stage.scrollTop = y * stage.scrollHeight - stage.clientHeight / 2;
  }

  listenForDrags(stage) {
    stage.addEventListener("pointerdown", (event) => {
      if (event.button !== 0 || !this.overflowing()) return;
      this.drag = { id: event.pointerId, x: event.clientX, y: event.clientY, left: stage.scrollLeft, top: stage.scrollTop };
      stage.setPointerCapture(event.pointerId);
      stage.dataset.dragging = "true";
      event.preventDefault();
    });
    stage.addEventListener("pointermove", (event) => {
      if (!this.drag || event.pointerId !== this.drag.id) return;
      stage.scrollLeft = this.drag.left - (event.clientX - this.drag.x);
      stage.scrollTop = this.drag.top - (event.clientY - this.drag.y);
    });
    const stop = () => {
      this.drag = null;
      stage.dataset.dragging = "false";
    };
    stage.addEventListener("pointerup", stop);
    stage.addEventListener("pointercancel", stop);
    stage.addEventListener("lostpointercapture", stop);
  }
}

function measureLevels(image) {
  // The brightness below which AUTO_CUTOFF of the pixels lie, and above which as many, 0 to 1;
  // null for an image too flat to stretch.
  try {
    const shrink = Math.min(1, LEVELS_SIDE / Math.max(image.naturalWidth, image.naturalHeight, 1));
    const width = Math.max(1, Math.round(image.naturalWidth * shrink));
    const height = Math.max(1, Math.round(image.naturalHeight * shrink));
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    const context = canvas.getContext("2d", { willReadFrequently: true });
    context.drawImage(image, 0, 0, width, height);
    const pixels = context.getImageData(0, 0, width, height).data;
    const histogram = new Uint32Array(256);
    let count = 0;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i + 3] === 0) continue; // transparent
      histogram[Math.round(0.299 * pixels[i] + 0.587 * pixels[i + 1] + 0.114 * pixels[i + 2])] += 1;
      count += 1;
    }
    const cut = Math.floor(count * AUTO_CUTOFF);
    let low = 0;
    for (let seen = 0; low < 255 && seen + histogram[low] <= cut; low += 1) seen += histogram[low];
    let high = 255;
    for (let seen = 0; high > 0 && seen + histogram[high] <= cut; high -= 1) seen += histogram[high];
    return high - low < 2 ? null : { low: low / 255, high: high / 255 };
  } catch {
    return null;
  }
}

function loadImageSettings() {
  try {
    const saved = JSON.parse(window.localStorage.getItem(IMAGE_SETTINGS_KEY) || "{}");
    const settings = { ...IMAGE_DEFAULTS };
    if (ZOOM_LEVELS.some(([level]) => level === saved.zoom)) settings.zoom = saved.zoom;
    for (const name of ["brightness", "contrast"]) {
      if (Number.isInteger(saved[name]) && Math.abs(saved[name]) <= STEPS) settings[name] = saved[name];
    }
    settings.auto = saved.auto === true;
    if (["pixelated", "smooth"].includes(saved.smoothing)) settings.smoothing = saved.smoothing;
    return settings;
  } catch {
    return { ...IMAGE_DEFAULTS }; // no storage (a private window): the session's settings only
  }
}

function saveImageSettings(settings) {
  try {
    window.localStorage.setItem(IMAGE_SETTINGS_KEY, JSON.stringify(settings));
  } catch {
    // no storage: the settings last as long as the page
  }
}

function percent(factor) {
  return `${Math.round(factor * 100)}%`;
}

function round4(value) {
  return Math.round(value * 10000) / 10000;
}

function keepInUrl(exampleId) {
  // The URL names the example on screen, so it can be shared as a link to it.
  const url = new URL(window.location.href);
  if (url.searchParams.get("example") === exampleId) return;
  url.searchParams.set("example", exampleId);
  window.history.replaceState(window.history.state, "", url);
}

function standingNote(view) {
  if (view.standing === "correctly classified") {
    return "Correctly classified: the model got this dev example right, so it is not an error to review.";
  }
  if (view.standing === "reviewed, not in this queue") {
    return `Reviewed, not in this queue (${view.state}): changes here edit that review.`;
  }
  return `This example is ${view.standing}.`;
}

function othersOf(view, reviewer) {
  const others = new Map();
  for (const [who, ids] of Object.entries(view.tags || {}).sort()) {
    if (who === reviewer) continue;
    for (const id of ids) {
      if (!others.has(id)) others.set(id, []);
      others.get(id).push(who);
    }
  }
  return others;
}

function reasonsOf(view) {
  // category id -> the reasons of the signals suggesting it (user text: shown as text only).
  const reasons = new Map();
  for (const s of view.suggestions || []) {
    if (!reasons.has(s.category)) reasons.set(s.category, []);
    reasons.get(s.category).push(s.reason);
  }
  return reasons;
}

function activatesOnEnter(node) {
  if (!node || node === document.body || !node.closest) return false;
  return !!node.closest("a[href], button, summary, [role='button'], [role='link'], [role='tab']");
}

function isEditable(node) {
  if (!node || node === document.body) return false;
  if (node.closest && node.closest(".lt-rs-tools")) return false; // the image tools' sliders
  const tag = node.tagName;
  return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || node.isContentEditable;
}

function el(tag, className, content) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (content instanceof Node) node.append(content);
  else if (content != null) node.textContent = String(content);
  return node;
}

function text(value) {
  return document.createTextNode(String(value));
}

function strong(value) {
  return el("strong", "", value);
}

function code(value) {
  return el("code", "", value);
}
