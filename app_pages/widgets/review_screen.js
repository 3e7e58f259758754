// The review screen in the browser: every key press is bound to the example on screen.
//
// Each press becomes a numbered action naming its example ("tag 12 with category 3 on",
// "save 12") and is shown at once. The list of actions the server has not acknowledged yet is
// sent with the example on screen; the server applies them in order, each to its own example,
// and answers with what it applied and the queue's next examples (images included), so `n`
// shows the next one without waiting. Nothing here trusts the server to be quick: keys keep
// working while it is busy, and the screen says "Saving…" until it has caught up.
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
    this.images = new Map(); // pk -> data URI (or null with a reason in the view)
    this.order = []; // the newest window: the anchor, then the queue's next examples
    this.previousOf = new Map(); // pk -> the queue example before it, when the server said
    this.trail = []; // the examples shown, in order; `pos` is the one on screen
    this.pos = -1;
    this.showing = null;
    this.epoch = null;
    this.run = -1;
    this.end = false;
    this.waiting = false; // `n` was pressed past the known window
    this.nonce = 0; // numbers the messages to the server, which echoes the last it read
    this.inFlight = false; // a message is on its way and the server has not answered it yet
    this.dirty = false; // something changed since that message: send once it is answered
    this.timings = []; // key press -> next example painted, in ms (read by the benchmark)
    this.onKey = (event) => this.key(event);
    this.attached = false;
  }

  attach() {
    if (this.attached) return;
    window.addEventListener("keydown", this.onKey, true);
    this.attached = true;
  }

  detach() {
    window.removeEventListener("keydown", this.onKey, true);
    clearTimeout(this.resendTimer);
    clearTimeout(this.flashTimer);
    clearTimeout(this.answerTimer);
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
    const acked = (data.acked || {})[this.client] || 0;
    this.acked = Math.max(this.acked, acked);
    for (const refusal of (data.refused || {})[this.client] || []) {
      if (!this.failed.has(refusal.seq)) {
        this.failed.set(refusal.seq, refusal.message);
        this.flash(`Not saved: ${refusal.message}`, true);
      }
    }
    for (const view of data.examples || []) {
      if (view.src) this.images.set(view.pk, view.src);
      this.cache.set(view.pk, { view, stamp: acked });
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
    const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    const category = event.shiftKey ? null : this.byKey.get(key);
    const own = { n: 1, s: 1, p: 1, "/": 1, "=": 1, "?": 1 };
    if (!category && !(key in own)) return;
    if (event.shiftKey && key !== "?") return;
    event.preventDefault();
    event.stopPropagation();
    if (event.repeat) return; // a held key acts once
    this.pressedAt = event.timeStamp;
    if (category) this.toggle(category.id);
    else if (key === "n") this.saveAndNext();
    else if (key === "s") this.skip();
    else if (key === "p") this.previous();
    else if (key === "/") this.focusComment();
    else if (key === "=") this.openLabel();
    else if (key === "?") this.toggleLegend();
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
      nonce: ++this.nonce,
    });
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
      if (a.kind === "tag") {
        if (a.on) view.mine.add(a.category);
        else view.mine.delete(a.category);
        const category = this.byId.get(a.category);
        if (a.on && category && category.incorrectLabel && !view.corrected) {
          view.corrected = view.prediction;
        }
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
    const src = this.images.get(view.pk);
    if (src) {
      if (ui.img.dataset.pk !== String(view.pk)) {
        ui.img.src = src;
        ui.img.dataset.pk = String(view.pk);
        this.notePaint(view.pk);
      }
      ui.img.hidden = false;
      ui.imgProblem.hidden = true;
    } else {
      ui.img.hidden = true;
      ui.img.dataset.pk = "";
      ui.imgProblem.hidden = false;
      ui.imgProblem.textContent = `🚫 ${view.imageProblem || "image not loaded yet"}`;
    }
    ui.caption.textContent = view.image;

    ui.categories.textContent = "";
    const others = othersOf(view, this.reviewer);
    for (const category of this.categories) {
      const on = view.mine.has(category.id);
      const button = el("button", "lt-rs-cat");
      button.type = "button";
      button.dataset.category = category.name;
      button.dataset.on = on ? "true" : "false";
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.title = category.description || "";
      button.disabled = !view.reviewable || !this.reviewer;
      button.style.setProperty("--lt-cat", category.colour);
      button.append(
        el("span", "lt-rs-key", category.key || "·"),
        el("span", "lt-rs-check", on ? "✓" : ""),
        el("span", "lt-rs-cat-name", category.name),
      );
      if (others.has(category.id)) {
        button.append(el("span", "lt-rs-others", `also ${others.get(category.id).join(", ")}`));
      }
      button.addEventListener("click", () => this.toggle(category.id));
      ui.categories.append(button);
    }
    if (!this.categories.length) {
      ui.categories.append(el("p", "lt-rs-hint", "No categories yet: add one below or on the Categories page."));
    }
    if (document.activeElement !== ui.comment) ui.comment.value = view.comment;
    ui.corrected.textContent = view.corrected || "—";
    ui.save.disabled = !this.reviewer && view.reviewable;
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
    ui.img = el("img", "lt-rs-img");
    ui.img.alt = "the example's image";
    ui.imgProblem = el("div", "lt-rs-img-problem");
    ui.caption = el("div", "lt-rs-caption");
    left.append(ui.img, ui.imgProblem, ui.caption);

    const right = el("div", "lt-rs-right");
    ui.pair = el("div", "lt-rs-pair");
    ui.confidence = el("div", "lt-rs-confidence");
    ui.top = el("div", "lt-rs-top");
    ui.categories = el("div", "lt-rs-categories");
    ui.categories.setAttribute("aria-label", "Error categories");

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
    right.append(ui.pair, ui.confidence, ui.top, el("div", "lt-rs-field", "Error categories (press the key to toggle)"),
      ui.categories, labelRow, ui.labelBox, ui.comment, buttons, ui.legend);
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

function isEditable(node) {
  if (!node || node === document.body) return false;
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
