// The gallery's grid of tiles (see gallery_grid.py for the protocol with the page).
//
// Streamlit calls the default export again with the same parentElement every time `data`
// changes, and only the last returned cleanup runs at unmount, so each grid lives in a
// WeakMap keyed by its parentElement and the keyboard listener is installed once per page.
// User text (ids, labels, category and reviewer names) only ever goes into textContent,
// attributes or CSS properties, never into innerHTML.
//
// Selection: a click toggles a tile, Shift+click selects the range from the last tile
// clicked; arrows move the focus ring, Space toggles, Shift+arrows extend, Ctrl/Cmd+A
// selects the page, Esc clears, Enter opens the focused tile, and each category's key tags
// the selection (or untags it when every selected tile already has it from this reviewer).
// Suggested categories (from `labeltool analyze`) are dashed chips; "Accept suggestions"
// tags the selection with them. M (unless a category uses it) or "More like this" shows the
// errors most like the focused tile.

const grids = new WeakMap(); // parentElement -> Grid
let active = null; // the grid the keyboard talks to: the one drawn last
const KEY_LISTENER = "__labeltoolGalleryKeys";
const NAV = {
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
};
const FIELD_ROLES =
  "[role=textbox],[role=combobox],[role=slider],[role=spinbutton],[role=listbox]," +
  "[role=radio],[role=radiogroup],[role=menu],[role=menuitem],[role=option],[role=dialog]";
const CONTROLS =
  "button,a[href],summary,input,[role=button],[role=link],[role=checkbox],[role=switch]," +
  "[role=tab],[role=menuitem]";

installKeyListener();

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let grid = grids.get(parentElement);
  if (!grid) {
    grid = new Grid(parentElement);
    grids.set(parentElement, grid);
  }
  grid.setStateValue = setStateValue;
  grid.update(data || {});
  active = grid;
  return () => {
    grids.delete(parentElement);
    if (active === grid) active = null;
  };
}

class Grid {
  constructor(parent) {
    this.root = parent.querySelector(".lt-g");
    this.tilesBox = this.root.querySelector(".lt-g-tiles");
    this.categorySelect = this.root.querySelector(".lt-g-category");
    this.keysBox = this.root.querySelector(".lt-g-keys");
    this.status = this.root.querySelector(".lt-g-status");
    this.buttons = {};
    for (const button of this.root.querySelectorAll(".lt-g-bar [data-do]")) {
      this.buttons[button.dataset.do] = button;
    }
    this.client = randomId();
    this.seq = 0;
    this.pending = []; // actions sent and not yet acknowledged by the server
    this.data = { tiles: [], categories: [], reviewer: "" };
    this.tiles = []; // the server's tiles with the pending actions already applied
    this.selected = new Set(); // example pks
    this.focus = null; // pk of the tile with the focus ring
    this.anchor = null; // pk a Shift-range starts from
    this.base = new Set(); // the selection when the anchor was set
    this.elements = new Map(); // pk -> tile element
    this.message = ""; // a hint, or what the last actions did
    this.noticeSeen = null;

    this.tilesBox.addEventListener("click", (event) => this.onClick(event));
    this.root.querySelector(".lt-g-bar").addEventListener("click", (event) => {
      const button = event.target.closest("[data-do]");
      if (button && !button.disabled) this.onToolbar(button.dataset.do);
    });
    this.keysBox.addEventListener("click", (event) => {
      const button = event.target.closest("[data-category]");
      if (button && !button.disabled) this.toggleCategory(Number(button.dataset.category));
    });
  }

  // --- data from the server ---------------------------------------------------------

  update(data) {
    this.data = {
      tiles: data.tiles || [],
      categories: data.categories || [],
      reviewer: data.reviewer || "",
      acked: data.acked || {},
    };
    const notice = data.notice;
    if (notice && notice.id !== this.noticeSeen) {
      this.noticeSeen = notice.id;
      this.message = notice.text;
    }
    const acked = this.data.acked[this.client] || 0;
    this.pending = this.pending.filter((action) => action.seq > acked);
    this.rebuildModel();
    const present = new Set(this.tiles.map((tile) => tile.pk));
    this.selected = new Set([...this.selected].filter((pk) => present.has(pk)));
    this.base = new Set([...this.base].filter((pk) => present.has(pk)));
    if (!present.has(this.focus)) this.focus = null;
    if (!present.has(this.anchor)) this.anchor = null;
    this.renderCategories();
    this.renderTiles();
    this.paint();
  }

  // The server's tiles, with what the pending actions will change already shown.
  rebuildModel() {
    const byPk = new Map();
    this.tiles = this.data.tiles.map((tile) => {
      const copy = { ...tile, tags: tile.tags.map((tag) => ({ ...tag, by: [...tag.by] })) };
      byPk.set(copy.pk, copy);
      return copy;
    });
    for (const action of this.pending) {
      for (const pk of action.pks) {
        const tile = byPk.get(pk);
        if (tile) applyLocally(tile, action, this.categoryOrder());
      }
    }
  }

  categoryOrder() {
    return this.data.categories.map((category) => category.id);
  }

  // --- drawing ---------------------------------------------------------------------

  renderCategories() {
    const chosen = this.categorySelect.value;
    const options = this.data.categories.map((category) => {
      const option = document.createElement("option");
      option.value = String(category.id);
      option.textContent = category.key ? `${category.name} (${category.key})` : category.name;
      return option;
    });
    if (!options.length) {
      const none = document.createElement("option");
      none.value = "";
      none.textContent = "(no categories yet)";
      options.push(none);
    }
    this.categorySelect.replaceChildren(...options);
    if (options.some((option) => option.value === chosen)) this.categorySelect.value = chosen;

    const legend = [];
    const label = document.createElement("span");
    label.textContent = "Keys:";
    legend.push(label);
    for (const category of this.data.categories.filter((c) => c.key)) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.category = String(category.id);
      button.title = `Press ${category.key} to tag (or untag) the selection with ${category.name}`;
      const cap = document.createElement("span");
      cap.className = "lt-g-keycap";
      cap.textContent = category.key;
      paintChip(cap, category.colour, true);
      const name = document.createElement("span");
      name.textContent = category.name;
      button.append(cap, name);
      legend.push(button);
    }
    const help = document.createElement("span");
    help.className = "lt-g-help";
    help.textContent =
      "Click or Space selects · Shift extends · arrows move · Ctrl+A page · Esc clears · " +
      "Enter opens" +
      (this.data.categories.some((c) => (c.key || "").toLowerCase() === "m")
        ? ""
        : " · M more like this");
    legend.push(help);
    this.keysBox.replaceChildren(...legend);
  }

  renderTiles() {
    const categories = new Map(this.data.categories.map((c) => [c.id, c]));
    const elements = this.tiles.map((tile) => {
      let element = this.elements.get(tile.pk);
      if (!element) {
        element = createTile(tile.pk);
        this.elements.set(tile.pk, element);
      }
      fillTile(element, tile, categories);
      return element;
    });
    const present = new Set(this.tiles.map((tile) => tile.pk));
    for (const pk of [...this.elements.keys()]) {
      if (!present.has(pk)) this.elements.delete(pk);
    }
    if (!elements.length) {
      const empty = document.createElement("div");
      empty.className = "lt-g-empty";
      empty.textContent = "No errors on this page.";
      elements.push(empty);
    }
    this.tilesBox.replaceChildren(...elements);
  }

  // Selection, focus ring, toolbar and status: cheap, so drawn after every change.
  paint() {
    for (const [pk, element] of this.elements) {
      const selected = this.selected.has(pk);
      element.classList.toggle("lt-g-selected", selected);
      element.classList.toggle("lt-g-focused", pk === this.focus);
      element.setAttribute("aria-selected", String(selected));
    }
    if (this.focus !== null) {
      this.tilesBox.setAttribute("aria-activedescendant", tileId(this.focus));
    } else {
      this.tilesBox.removeAttribute("aria-activedescendant");
    }
    const count = this.selected.size;
    const canWrite = Boolean(this.data.reviewer) && count > 0;
    this.buttons.tag.disabled = !canWrite || !this.data.categories.length;
    this.buttons.untag.disabled = !canWrite || !this.data.categories.length;
    this.buttons.reviewed.disabled = !canWrite;
    this.buttons.accept.disabled =
      !canWrite || !this.selectedInOrder().some((pk) => openSuggestions(this.tile(pk)).length);
    this.buttons.similar.disabled = this.focus === null && count !== 1;
    this.buttons.all.disabled = !this.tiles.length || count === this.tiles.length;
    this.buttons.none.disabled = count === 0;
    for (const button of this.keysBox.querySelectorAll("[data-category]")) {
      button.disabled = !canWrite;
    }
    const counted = document.createElement("span");
    counted.className = "lt-g-count";
    counted.textContent = `${count} selected`;
    const parts = [counted];
    if (this.pending.length) parts.push(" · saving…");
    if (this.message) parts.push(` · ${this.message}`);
    this.status.replaceChildren(...parts);
    this.root.dataset.saving = String(this.pending.length > 0);
  }

  say(message) {
    this.message = message;
    this.paint();
  }

  // --- what the user does ----------------------------------------------------------

  onClick(event) {
    const element = event.target.closest(".lt-g-tile");
    if (!element) return;
    const pk = Number(element.dataset.pk);
    this.tilesBox.focus({ preventScroll: true });
    if (event.target.closest(".lt-g-open")) {
      this.focus = pk;
      this.open(pk);
      return;
    }
    if (event.shiftKey && this.anchor !== null) {
      this.focus = pk;
      this.extendTo(pk);
    } else {
      this.focus = pk;
      this.toggle(pk);
    }
    this.message = "";
    this.paint();
  }

  onToolbar(what) {
    this.message = "";
    if (what === "all") this.selectAll();
    else if (what === "none") this.clear();
    else if (what === "reviewed") this.markReviewed();
    else if (what === "accept") this.acceptSuggestions();
    else if (what === "similar") this.similar();
    else {
      const id = Number(this.categorySelect.value);
      if (!id) return;
      this.post({ kind: what, pks: this.selectedInOrder(), category: id });
    }
  }

  // Returns whether the key meant something here (the caller then stops it).
  onKey(key, shift) {
    if (NAV[key]) {
      this.move(...NAV[key], shift);
      return true;
    }
    if (key === "Home" || key === "End") {
      const order = this.order();
      if (!order.length) return true;
      this.moveTo(key === "Home" ? 0 : order.length - 1, shift);
      return true;
    }
    if (shift) return false;
    if (key === " ") {
      if (this.focus === null) this.moveTo(0, false);
      if (this.focus !== null) this.toggle(this.focus);
      this.message = "";
      this.paint();
      return true;
    }
    if (key === "Enter") {
      if (this.focus === null) return false;
      this.open(this.focus);
      return true;
    }
    if (key === "Escape") {
      if (!this.selected.size && !this.message) return false;
      this.clear();
      return true;
    }
    const category = this.data.categories.find(
      (c) => c.key && c.key.toLowerCase() === key.toLowerCase(),
    );
    if (category) {
      this.toggleCategory(category.id);
      return true;
    }
    if (key.toLowerCase() === "m") {
      this.similar();
      return true;
    }
    return false;
  }

  toggle(pk) {
    if (this.selected.has(pk)) this.selected.delete(pk);
    else this.selected.add(pk);
    this.anchor = pk;
    this.base = new Set(this.selected);
  }

  // Select the anchor's range up to `pk`, on top of what was selected before the range.
  extendTo(pk) {
    const order = this.order();
    let from = order.indexOf(this.anchor);
    let to = order.indexOf(pk);
    if (from < 0) from = to;
    if (from > to) [from, to] = [to, from];
    this.selected = new Set(this.base);
    for (const each of order.slice(from, to + 1)) this.selected.add(each);
  }

  move(dx, dy, extend) {
    const order = this.order();
    if (!order.length) return;
    const at = order.indexOf(this.focus);
    if (at < 0) {
      this.moveTo(0, extend);
      return;
    }
    const step = dy ? dy * this.columns() : dx;
    this.moveTo(Math.min(order.length - 1, Math.max(0, at + step)), extend);
  }

  moveTo(index, extend) {
    const order = this.order();
    if (!order.length) return;
    const previous = this.focus;
    this.focus = order[index];
    if (extend) {
      if (this.anchor === null) {
        this.anchor = previous ?? this.focus;
        this.base = new Set(this.selected);
      }
      this.extendTo(this.focus);
    } else {
      this.anchor = this.focus;
      this.base = new Set(this.selected);
    }
    this.message = "";
    this.paint();
    this.elements.get(this.focus)?.scrollIntoView({ block: "nearest", inline: "nearest" });
  }

  selectAll() {
    this.selected = new Set(this.order());
    this.base = new Set(this.selected);
    this.message = "";
    this.paint();
  }

  clear() {
    this.selected.clear();
    this.base.clear();
    this.message = "";
    this.paint();
  }

  // A category key: tag the selection, or untag it when every selected tile has it already.
  toggleCategory(categoryId) {
    const pks = this.writablePks();
    if (!pks) return;
    const every = pks.every((pk) =>
      this.tile(pk).tags.some((tag) => tag.id === categoryId && tag.mine),
    );
    this.post({ kind: every ? "untag" : "tag", pks, category: categoryId });
  }

  markReviewed() {
    const pks = this.writablePks();
    if (!pks) return;
    this.post({ kind: "reviewed", pks });
    this.clear();
  }

  acceptSuggestions() {
    const pks = this.writablePks();
    if (!pks) return;
    const withSome = pks.filter((pk) => openSuggestions(this.tile(pk)).length);
    if (!withSome.length) {
      this.say("no suggestions on the selection");
      return;
    }
    this.post({ kind: "accept", pks: withSome });
  }

  // The errors most like the focused tile (or the one selected tile).
  similar() {
    const selected = this.selectedInOrder();
    const pk = this.focus ?? (selected.length === 1 ? selected[0] : null);
    if (pk === null) {
      this.say("focus a tile first (arrows, or click one)");
      return;
    }
    const tile = this.tile(pk);
    this.post({ kind: "similar", pks: [pk] });
    this.say(`finding errors like ${tile ? tile.id : pk}…`);
  }

  open(pk) {
    const tile = this.tile(pk);
    this.post({ kind: "open", pks: [pk] });
    this.say(`opening ${tile ? tile.id : pk}…`);
  }

  // The selection in page order, or null (with a hint) when nothing can be written.
  writablePks() {
    if (!this.data.reviewer) {
      this.say("enter your name as Reviewer in the sidebar first");
      return null;
    }
    const pks = this.selectedInOrder();
    if (!pks.length) {
      this.say("select examples first (click a tile, or Space)");
      return null;
    }
    return pks;
  }

  post(action) {
    this.seq += 1;
    this.pending.push({ ...action, seq: this.seq, reviewer: this.data.reviewer });
    this.rebuildModel();
    this.renderTiles();
    this.paint();
    this.setStateValue("grid", { client: this.client, actions: this.pending });
  }

  // --- helpers ---------------------------------------------------------------------

  order() {
    return this.tiles.map((tile) => tile.pk);
  }

  tile(pk) {
    return this.tiles.find((tile) => tile.pk === pk);
  }

  selectedInOrder() {
    return this.order().filter((pk) => this.selected.has(pk));
  }

  // How many tiles one row holds, read from the layout.
  columns() {
    const elements = this.order().map((pk) => this.elements.get(pk));
    if (!elements.length) return 1;
    const top = elements[0].offsetTop;
    const inRow = elements.findIndex((element) => element.offsetTop > top + 2);
    return inRow < 0 ? elements.length : Math.max(1, inRow);
  }
}

// --- tiles -----------------------------------------------------------------------------

function createTile(pk) {
  const element = document.createElement("div");
  element.className = "lt-g-tile";
  element.id = tileId(pk);
  element.dataset.pk = String(pk);
  element.setAttribute("data-testid", "gallery-tile");
  element.setAttribute("role", "option");

  const frame = document.createElement("div");
  frame.className = "lt-g-img";
  const check = document.createElement("span");
  check.className = "lt-g-check";
  check.textContent = "✓";
  check.setAttribute("aria-hidden", "true");
  const state = document.createElement("span");
  state.className = "lt-g-state";
  const confidence = document.createElement("span");
  confidence.className = "lt-g-confidence";
  frame.append(state, check, confidence);

  const id = document.createElement("div");
  id.className = "lt-g-id";
  const line = document.createElement("div");
  line.className = "lt-g-line";
  const pair = document.createElement("span");
  pair.className = "lt-g-pair";
  const open = document.createElement("button");
  open.type = "button";
  open.className = "lt-g-open";
  open.tabIndex = -1;
  open.textContent = "Open";
  line.append(pair, open);
  const chips = document.createElement("div");
  chips.className = "lt-g-chips";
  const note = document.createElement("div");
  note.className = "lt-g-note";

  element.append(frame, id, line, chips, note);
  return element;
}

function fillTile(element, tile, categories) {
  element.dataset.exampleId = tile.id;
  const frame = element.querySelector(".lt-g-img");
  let picture = frame.querySelector("img, .lt-g-problem");
  if (tile.src) {
    if (!picture || picture.tagName !== "IMG") {
      picture?.remove();
      picture = document.createElement("img");
      picture.alt = `example ${tile.id}`;
      picture.draggable = false;
      picture.addEventListener("load", () => {
        // Small images (the digits are 8x8) are enlarged without smoothing.
        picture.classList.toggle("lt-g-crisp", picture.naturalWidth < 64);
      });
      frame.prepend(picture);
    }
    if (picture.getAttribute("src") !== tile.src) picture.src = tile.src;
  } else {
    if (!picture || picture.tagName === "IMG") {
      picture?.remove();
      picture = document.createElement("span");
      picture.className = "lt-g-problem";
      frame.prepend(picture);
    }
    picture.textContent = `🚫 ${tile.problem || "no image"}`;
    picture.title = tile.problem || "";
  }
  const state = frame.querySelector(".lt-g-state");
  state.textContent = tile.state === "unreviewed" ? "" : tile.state;

  const id = element.querySelector(".lt-g-id");
  id.textContent = tile.id;
  id.title = tile.id;
  const confidence =
    typeof tile.confidence === "number" ? `${Math.round(tile.confidence * 100)}%` : "";
  const badge = frame.querySelector(".lt-g-confidence");
  badge.textContent = confidence;
  badge.title = confidence && `the model's confidence in its prediction: ${confidence}`;
  const pair = element.querySelector(".lt-g-pair");
  pair.textContent = tile.pair;
  pair.title = `${tile.pair} (true label -as- predicted label)`;

  const chips = tile.tags
    .filter((tag) => categories.has(tag.id))
    .map((tag) => {
      const category = categories.get(tag.id);
      const chip = document.createElement("span");
      chip.className = "lt-g-chip";
      chip.classList.toggle("lt-g-others", !tag.mine);
      chip.textContent = category.name;
      chip.title = `${category.name} · tagged by ${tag.by.join(", ")}`;
      chip.dataset.category = String(tag.id);
      paintChip(chip, category.colour, tag.mine);
      return chip;
    });
  for (const suggestion of openSuggestions(tile)) {
    const category = categories.get(suggestion.id);
    if (!category) continue;
    const chip = document.createElement("span");
    chip.className = "lt-g-chip lt-g-suggested";
    chip.textContent = category.name;
    chip.title = `suggested, not saved: ${suggestion.reason}`;
    chip.dataset.category = String(suggestion.id);
    chip.style.borderColor = category.colour;
    chips.push(chip);
  }
  element.querySelector(".lt-g-chips").replaceChildren(...chips);
  const note = element.querySelector(".lt-g-note");
  note.textContent = tile.note || "";
  note.hidden = !tile.note;
}

// The tile's suggested categories this reviewer has not tagged yet.
function openSuggestions(tile) {
  if (!tile || !tile.suggestions) return [];
  const mine = new Set(tile.tags.filter((tag) => tag.mine).map((tag) => tag.id));
  return tile.suggestions.filter((suggestion) => !mine.has(suggestion.id));
}

// The change an action will make, shown before the server confirms it.
function applyLocally(tile, action, order) {
  if (action.kind === "reviewed") {
    tile.state = "reviewed";
    return;
  }
  if (action.kind === "accept") {
    for (const suggestion of openSuggestions(tile)) {
      applyLocally(tile, { ...action, kind: "tag", category: suggestion.id }, order);
    }
    return;
  }
  if (action.kind !== "tag" && action.kind !== "untag") return;
  let tag = tile.tags.find((each) => each.id === action.category);
  if (action.kind === "tag" && !(tag && tag.mine)) {
    if (!tag) {
      tag = { id: action.category, mine: false, by: [] };
      tile.tags.push(tag);
      tile.tags.sort((a, b) => order.indexOf(a.id) - order.indexOf(b.id));
    }
    tag.mine = true;
    tag.by.push(action.reviewer);
  } else if (action.kind === "untag" && tag && tag.mine) {
    tag.mine = false;
    tag.by = tag.by.filter((who) => who !== action.reviewer);
    if (!tag.by.length) tile.tags = tile.tags.filter((each) => each !== tag);
  }
}

function paintChip(element, colour, filled) {
  element.style.borderColor = colour;
  if (filled) {
    element.style.backgroundColor = colour;
    element.style.color = readableOn(colour);
  }
}

// Black or white, whichever reads better on the category's colour (#rrggbb).
function readableOn(colour) {
  const match = /^#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})$/i.exec(colour || "");
  if (!match) return "#ffffff";
  const [r, g, b] = match.slice(1).map((hex) => {
    const c = parseInt(hex, 16) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  const luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b;
  return luminance > 0.4 ? "#111111" : "#ffffff";
}

function tileId(pk) {
  return `lt-g-tile-${pk}`;
}

function randomId() {
  if (globalThis.crypto?.randomUUID) return crypto.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
}

// --- the keyboard --------------------------------------------------------------------

function installKeyListener() {
  const previous = window[KEY_LISTENER];
  if (previous) window.removeEventListener("keydown", previous, true);
  window[KEY_LISTENER] = onKeyDown;
  // Capture phase: the grid decides before Streamlit's own shortcuts see the key.
  window.addEventListener("keydown", onKeyDown, true);
}

function onKeyDown(event) {
  const grid = active;
  if (!grid || !grid.root.isConnected || event.defaultPrevented || event.isComposing) return;
  const target = event.composedPath()[0] || event.target;
  const onGrid = target === grid.tilesBox || grid.tilesBox.contains(target);
  if (!onGrid && isField(target)) return;
  const key = String(event.key || "");
  const activates = key === " " || key === "Enter";
  if (activates && !onGrid && target instanceof Element && target.closest(CONTROLS)) return;
  const command = event.ctrlKey || event.metaKey;
  if (command && !event.altKey && !event.shiftKey && key.toLowerCase() === "a") {
    grid.selectAll();
    stop(event);
    return;
  }
  if (command || event.altKey) return;
  if (event.repeat && !NAV[key]) return;
  if (grid.onKey(key, event.shiftKey)) stop(event);
}

// A text box, select, slider or similar: its keys are its own.
function isField(target) {
  if (!(target instanceof Element)) return false;
  if (target.isContentEditable) return true;
  if (target.closest("input,textarea,select")) return true;
  return Boolean(target.closest(FIELD_ROLES));
}

function stop(event) {
  event.preventDefault();
  event.stopPropagation();
}
