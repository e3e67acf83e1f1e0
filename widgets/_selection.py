"""Selection across the views of :class:`~motiflab.widgets.views.ExplorerViews`.

* click-to-select: a click on a gallery tile, a bar or a hierarchy node selects
  every column with that key in the shared ``"columns"`` source (in the browser);
* one highlight everywhere: whenever the column selection changes, from
  whichever view, the gallery tiles, bars and hierarchy nodes are highlighted
  exactly when *all* their columns are selected (and none is when nothing is),
  so no view keeps the highlight of an earlier selection;
* the mean patch of the current selection, computed client-side from one uint8
  patch stack when it fits the budget, else in Python (notebook only).
"""
from __future__ import annotations

import numpy as np

__all__ = ["JS_SELECT_BY_KEY", "JS_SELECTION_MEAN", "JS_SYNC_HIGHLIGHTS", "SelectionViews", "highlighted"]

JS_SELECTION_MEAN = """
// mean patch of the selection (all columns when nothing is selected), from the uint8 patch stack
const sel = src.selected.indices;
const info_text = (n, tot) => n ? (n + " of " + tot + " columns selected") : ("no selection (" + tot + " columns)");
const tot = src.get_length() || 0;
info.text = info_text(sel.length, tot);
const P = stack.data.P[0];
const flat = stack.data.p[0];
if (!flat || !P || flat.length === 0) { return; }
const n = flat.length / (P * P);
if (n !== tot) { return; }
const ids = sel.length ? sel : null;
const m = ids ? ids.length : n;
const acc = new Float64Array(P * P);
if (ids) { for (const i of ids) { const o = i * P * P; for (let j = 0; j < P * P; j++) acc[j] += flat[o + j]; } }
else { for (let i = 0; i < n; i++) { const o = i * P * P; for (let j = 0; j < P * P; j++) acc[j] += flat[o + j]; } }
// write in place into the P×P float32 image Python sent (row 0 drawn at the bottom: flip rows);
// an in-place change is redrawn by change.emit() and, in the notebook, not sent back to the kernel
const img = out.data.image[0];
if (!img || img.length !== P * P) { return; }
for (let r = 0; r < P; r++) { for (let c = 0; c < P; c++) { img[(P - 1 - r) * P + c] = acc[r * P + c] / m; } }
out.change.emit();
"""

JS_SELECT_BY_KEY = """
// a click on a gallery tile / bar / hierarchy node selects every column with that key
if (src._motiflab_syncing) { return; }   // the highlight sync below set this, not a click
const hit = tapped.selected.indices;
if (!hit.length) { return; }
const keys = new Set(hit.map((i) => tapped.data[key_col][i]));
const out = [];
const a = src.data[col_a];
const b = col_b ? src.data[col_b] : null;
for (let i = 0; i < a.length; i++) {
  if (keys.has(a[i]) || (b !== null && keys.has(b[i]))) { out.push(i); }
}
// a highlight set by the sync below means "all these columns are already selected": it must
// not narrow the selection (CustomJS runs asynchronously, so the guard above can miss it)
const cur = new Set(src.selected.indices);
if (cur.size && out.every((i) => cur.has(i))) { return; }
src.selected.indices = out;
"""

JS_SYNC_HIGHLIGHTS = """
// the column selection changed (from any view): highlight the tiles / bars / nodes all of whose
// columns are selected, clear the rest; the guard keeps these writes from selecting columns again
const sel = src.selected.indices;
const on = new Uint8Array(src.get_length() || 0);
for (const i of sel) { on[i] = 1; }
const highlight = (target, key_col, col_a, col_b) => {
  const keys = target.data[key_col] || [];
  const tot = new Map(), hit = new Map();
  const a = src.data[col_a], b = col_b ? src.data[col_b] : null;
  const count = (k, i) => { tot.set(k, (tot.get(k) || 0) + 1); if (on[i]) { hit.set(k, (hit.get(k) || 0) + 1); } };
  if (sel.length && a) {
    for (let i = 0; i < a.length; i++) { count(a[i], i); if (b !== null && b[i] !== a[i]) { count(b[i], i); } }
  }
  const out = [];
  for (let j = 0; j < keys.length; j++) {
    const t = tot.get(keys[j]) || 0;
    if (t > 0 && hit.get(keys[j]) === t) { out.push(j); }
  }
  const cur = target.selected.indices;
  if (cur.length !== out.length || cur.some((v, j) => v !== out[j])) { target.selected.indices = out; }
};
src._motiflab_syncing = true;
try {
  for (const [target, key_col, col_a, col_b] of targets) { highlight(target, key_col, col_a, col_b); }
} finally { src._motiflab_syncing = false; }
"""


def highlighted(keys, selected, col_a, col_b=None):
    """Which of ``keys`` are highlighted for a column selection — the Python twin of :data:`JS_SYNC_HIGHLIGHTS`.

    Parameters
    ----------
    keys : sequence of int
        The key of each tile / bar / node.
    selected : sequence of int
        Selected column indices.
    col_a, col_b : ndarray of int
        Each column's key(s) (``col_b`` optional: hierarchy nodes match either).

    Returns
    -------
    list of int
        Positions in ``keys`` whose columns are all selected (none when nothing is).
    """
    sel = np.zeros(len(col_a), bool)
    sel[np.asarray(selected, dtype=np.int64)] = True
    if not sel.any():
        return []
    col_a = np.asarray(col_a)
    out = []
    for j, k in enumerate(keys):
        mine = col_a == k
        if col_b is not None:
            mine |= np.asarray(col_b) == k
        if mine.any() and sel[mine].all():
            out.append(j)
    return out


class SelectionViews:
    """Mixin of :class:`~motiflab.widgets.views.ExplorerViews`: click-to-select and the selection mean.

    Uses the host's ``source`` and ``stack_budget_mb``; sets ``mean_source``,
    ``stack``, ``info``, ``mean_fig``, ``stack_shipped`` and the patch stack
    kept for :meth:`selection_mean`.
    """

    def _link_tap(self, tapped, key_col, col_a, col_b=""):
        from bokeh.models import CustomJS

        tapped.selected.js_on_change("indices", CustomJS(
            args=dict(tapped=tapped, src=self.source, key_col=key_col, col_a=col_a, col_b=col_b),
            code=JS_SELECT_BY_KEY))
        self._tap_targets = getattr(self, "_tap_targets", []) + [[tapped, key_col, col_a, col_b]]

    def _build_highlight_sync(self):
        """Keep every clickable view's highlight equal to the column selection (see the module docstring)."""
        from bokeh.models import CustomJS

        self.source.selected.js_on_change("indices", CustomJS(
            args=dict(src=self.source, targets=list(getattr(self, "_tap_targets", []))),
            code=JS_SYNC_HIGHLIGHTS, name="selection_highlight_sync"))

    def _build_selection_mean(self):
        from bokeh.models import ColumnDataSource, CustomJS, Div
        from bokeh.plotting import figure

        self.mean_source = ColumnDataSource(dict(image=[np.zeros((1, 1), np.float32)]), name="selection_mean")
        self.stack = ColumnDataSource(dict(p=[np.zeros(0, np.uint8)], P=[0]), name="patch_stack")
        self.info = Div(text="", width=200, name="selection_info")
        fig = figure(width=200, height=230, title="Mean patch of selection", x_range=(0, 1), y_range=(0, 1),
                     tools="", toolbar_location=None, name="selection_mean_fig")
        fig.axis.visible = False
        fig.grid.visible = False
        fig.image(image="image", x=0, y=0, dw=1, dh=1, source=self.mean_source, palette="Greys256")
        self.source.selected.js_on_change("indices", CustomJS(
            args=dict(src=self.source, out=self.mean_source, stack=self.stack, info=self.info),
            code=JS_SELECTION_MEAN,
            name="selection_mean_js"))
        self.mean_fig = fig

    def _set_stack(self, patches):
        p = np.asarray(patches, dtype=np.float32)
        n, P = p.shape[0], p.shape[1]
        flat = p.reshape(n, -1)
        self._patch_stack = flat
        self.stack_shipped = n * P * P <= self.stack_budget_mb * 2**20
        if self.stack_shipped:
            lo, hi = np.percentile(flat, [0.5, 99.5])
            self._stack_range = (float(lo), float(hi))
            u8 = (np.clip((flat - lo) / (hi - lo + 1e-12), 0, 1) * 255).astype(np.uint8)
            self.stack.data = dict(p=[u8.ravel()], P=[int(P)])
        else:
            self.stack.data = dict(p=[np.zeros(0, np.uint8)], P=[int(P)])
        self.mean_source.data = dict(image=[flat.mean(0).reshape(P, P)[::-1].astype(np.float32)])

    def selection_mean(self, indices=None):
        """Mean patch (P, P) of the given columns (all when empty) — the Python twin of the JS view."""
        flat = self._patch_stack
        if flat is None or len(flat) == 0:
            return None
        P = int(round(np.sqrt(flat.shape[1])))
        ids = np.asarray(indices if indices is not None else [], dtype=np.int64)
        sub = flat[ids] if len(ids) else flat
        return sub.mean(0).reshape(P, P)

    def show_selection_mean(self, indices):
        """Update the mean-patch view from Python (used when the stack is not shipped to the browser)."""
        m = self.selection_mean(indices)
        if m is not None:
            self.mean_source.data = dict(image=[m[::-1].astype(np.float32)])
            n = len(self._patch_stack)
            self.info.text = (f"{len(indices)} of {n} columns selected" if len(indices)
                              else f"no selection ({n} columns)")
