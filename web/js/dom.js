// dom.js: small DOM and formatting helpers shared by the views (no framework, no build step).

/** el('td', {class: 'x', text: 'hi'}, child...) -> a new element. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'text') node.textContent = v;
    else if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

/** Sets textContent only when it changed (keeps screen readers and selections calm). */
export function setText(node, text) {
  const t = text === null || text === undefined ? '' : String(text);
  if (node.textContent !== t) node.textContent = t;
}

/**
 * Keyed list update: keeps one child of `container` per item (found by data-key), creates the
 * missing ones with create(item), refreshes each with update(node, item), removes the rest, and
 * keeps the order of `items`. Inputs inside rows survive updates (typed text is not lost).
 */
export function reconcile(container, items, keyOf, create, update) {
  const existing = new Map();
  for (const child of Array.from(container.children)) {
    if (child.dataset && child.dataset.key !== undefined) existing.set(child.dataset.key, child);
  }
  let prev = null;
  for (const item of items) {
    const key = String(keyOf(item));
    let node = existing.get(key);
    if (node) existing.delete(key);
    else {
      node = create(item);
      node.dataset.key = key;
    }
    update(node, item);
    const want = prev ? prev.nextSibling : container.firstChild;
    if (want !== node) container.insertBefore(node, want);
    prev = node;
  }
  for (const node of existing.values()) node.remove();
}

/** Seconds -> "1:05" or "1:02:05". */
export function fmtDuration(sec) {
  if (sec === null || sec === undefined || !Number.isFinite(sec)) return '–';
  const s = Math.max(0, Math.floor(sec));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${r}` : `${m}:${r}`;
}

/** Seconds elapsed since an RFC 3339 time (null when unknown). */
export function since(iso, now = Date.now()) {
  if (!iso) return null;
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return null;
  return Math.max(0, (now - t) / 1000);
}

/** RFC 3339 -> local "HH:MM:SS". */
export function fmtClock(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '–';
  return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

/** Human words for the device/extension states of docs/events.md. */
const STATUS_WORDS = {
  idle: 'Idle',
  notInUse: 'Available',
  inUse: 'On a call',
  busy: 'Busy',
  unavailable: 'Unavailable',
  invalid: 'Invalid',
  ringing: 'Ringing',
  ringInUse: 'Ringing (on a call)',
  inUseRinging: 'Ringing (on a call)',
  onHold: 'On hold',
  inUseOnHold: 'On hold',
  removed: 'Removed',
  deactivated: 'Deactivated',
  unknown: 'Unknown',
};

export function statusWord(status) {
  if (!status) return 'Unknown';
  return STATUS_WORDS[status] || status;
}

/** A CSS class family for a state: ok / ring / busy / off / hold / paused. */
export function statusTone(status) {
  switch (status) {
    case 'idle':
    case 'notInUse':
      return 'ok';
    case 'ringing':
    case 'ringInUse':
    case 'inUseRinging':
      return 'ring';
    case 'inUse':
    case 'busy':
      return 'busy';
    case 'onHold':
    case 'inUseOnHold':
      return 'hold';
    default:
      return 'off';
  }
}

/** <span class="badge tone-X">Words</span> */
export function badge(text, tone) {
  return el('span', { class: `badge tone-${tone}`, text });
}

/** Updates a badge made by badge() in place. */
export function setBadge(node, text, tone) {
  setText(node, text);
  const cls = `badge tone-${tone}`;
  if (node.className !== cls) node.className = cls;
}

/** "34600111222 (Customer)" or "34600111222" or "–". */
export function party(num, name) {
  if (!num && !name) return '–';
  if (num && name && name !== num) return `${num} (${name})`;
  return num || name;
}
