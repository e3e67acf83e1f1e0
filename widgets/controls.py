"""The explorer's parameter controls, generated from :mod:`motiflab.parameters`.

Every parameter of the spec gets one control, in a tab of the stages it feeds;
nothing about a parameter (range, default, choices, unit, help text) is
written here. The kind decides the widget:

* a choice → a dropdown; a flag → a checkbox;
* a number with a slider range (``Parameter.ui``) → a slider, otherwise a
  bounded text box; the FR layout's per-stage forces → one grid, a row per stage;
* a parameter with an "auto" value → its control plus an *auto* checkbox (the
  forces share one "paper's forces" button instead). While
  *auto* is ticked the control shows the value the method chose; moving the
  control applies that value (and unticks *auto*), ticking *auto* hands the
  choice back to the method.

The tooltip of each control is the parameter's one-line doc, its allowed
values and unit. :class:`ParameterControls` only turns widget events into
``on_change(name, value)`` calls and shows values it is given; the explorer
decides what to recompute.
"""
from __future__ import annotations

import re

from motiflab import parameters

__all__ = ["TABS", "ParameterControls"]

#: explorer tab → the stages whose parameters it holds
TABS = {
    "Columns": ("columns",),
    "Patches": ("patch_size", "patches", "features"),
    "Layout": ("graph", "layout"),
    "Motifs": ("motifs", "hierarchy"),
}
assert sorted(s for ss in TABS.values() for s in ss) == sorted(parameters.STAGES)

_FORCE = re.compile(r"^stage(\d)_(alpha|beta|n|m|lr)$")
_STYLE = {"description_width": "130px"}


def tooltip(p: parameters.Parameter) -> str:
    """The help a control shows on hover: what it does, the allowed values, what auto means."""
    auto = f" Auto: {p.auto_doc}." if p.has_auto and p.auto_doc else ""
    return f"{p.doc}. Allowed: {p.allowed()}.{auto} (parameter {p.name})"


class ParameterControls:
    """One ipywidgets control per parameter, grouped into tabs by stage.

    Parameters
    ----------
    on_change : callable
        ``on_change(name, value)``, called when the user changes a control.
    values : dict
        The analysis' parameters (auto values as ``None`` / ``"auto"``).
    shown : dict
        What each control shows (auto values resolved where known).
    limits : dict, optional
        Per-parameter ``(min, max)`` narrowing the slider range to the data
        (e.g. the patch size to half the image).

    Attributes
    ----------
    widgets : dict
        Parameter name → its control; ``"<name>_auto"`` → its auto checkbox.
    tabs : dict
        Tab title → ``ipywidgets.VBox``.
    """

    def __init__(self, on_change, values, shown, limits=None):
        import ipywidgets as W

        self._W = W
        self._on_change = on_change
        self._syncing = False
        self.widgets = {}
        limits = limits or {}
        self.tabs = {}
        for title, stages in TABS.items():
            rows, forces = [], []
            for p in parameters.SPEC:
                if p.stage not in stages:
                    continue
                w = self._make(p, values[p.name], shown[p.name], limits.get(p.name))
                if _FORCE.match(p.name):
                    forces.append(p)
                    continue
                auto = self.widgets.get(f"{p.name}_auto")
                rows.append(W.HBox([w, auto]) if auto is not None else w)
            if forces:
                rows.append(self._force_grid(forces))
            self.tabs[title] = W.VBox(rows)

    # ------------------------------------------------------------------ building
    def _make(self, p, value, shown, limit):
        W = self._W
        tip = tooltip(p)
        label = (p.label or p.name) + (f" ({p.unit})" if p.unit and p.unit not in (p.label or "") else "")
        compact = bool(_FORCE.match(p.name))
        if p.kind == "choice":
            w = W.Dropdown(options=[(str(c).lower(), c) for c in p.choices], value=shown, description=label,
                           style=_STYLE, layout=W.Layout(width="340px"), tooltip=tip)
        elif p.kind == "bool":
            w = W.Checkbox(value=bool(shown), description=label, indent=False, tooltip=tip,
                           layout=W.Layout(width="340px"))
        else:
            lo, hi, step = p.ui if p.ui else (p.low, p.high, 1 if p.kind == "int" else 0.1)
            if limit is not None:
                lo, hi = max(lo, limit[0]), min(hi, limit[1])
            shown = _clip(shown, lo, hi, p)
            if compact:
                cls = W.BoundedFloatText
                w = cls(value=shown, min=p.low, max=p.high, step=step, tooltip=tip, layout=W.Layout(width="72px"))
            elif p.ui:
                cls = W.IntSlider if p.kind == "int" else W.FloatSlider
                fmt = {} if p.kind == "int" else {"readout_format": f".{_decimals(step)}f"}
                w = cls(value=shown, min=lo, max=hi, step=step, description=label, continuous_update=False,
                        style=_STYLE, layout=W.Layout(width="420px" if p.name == "patch_size" else "360px"),
                        tooltip=tip, **fmt)
            else:
                cls = W.BoundedIntText if p.kind == "int" else W.BoundedFloatText
                w = cls(value=shown, min=lo, max=hi, description=label, style=_STYLE,
                        layout=W.Layout(width="260px"), tooltip=tip)
        self.widgets[p.name] = w
        w.observe(lambda ch, p=p: self._control_moved(p, ch["new"]), names="value")
        if p.has_auto and not compact:
            auto = W.Checkbox(value=value == p.auto, description="auto", indent=False, tooltip=f"auto: {p.auto_doc}",
                              layout=W.Layout(width="70px"))
            self.widgets[f"{p.name}_auto"] = auto
            auto.observe(lambda ch, p=p: self._auto_toggled(p, ch["new"]), names="value")
        return w

    def _force_grid(self, forces):
        """The FR forces as a table: a row per layout stage, a column per force."""
        W = self._W
        fields = []
        for p in forces:
            f = _FORCE.match(p.name).group(2)
            if f not in fields:
                fields.append(f)
        head = {"alpha": "α", "beta": "β", "n": "n", "m": "m", "lr": "rate"}
        cells = [W.HTML("<b>forces</b>")] + [W.HTML(f"<b>{head[f]}</b>") for f in fields] + [W.HTML("")]
        for i in sorted({_FORCE.match(p.name).group(1) for p in forces}):
            cells.append(W.HTML(f"stage {i}" + (" (repulsion)" if i == "1" else " (attraction)")))
            cells += [self.widgets[f"stage{i}_{f}"] for f in fields]
            cells.append(W.HTML(""))
        grid = W.GridBox(cells, layout=W.Layout(grid_template_columns=f"140px repeat({len(fields)}, 78px) 10px"))
        reset = W.Button(description="paper's forces", tooltip="set every force back to the paper's value",
                         layout=W.Layout(width="130px"))
        reset.on_click(lambda _b: [self._on_change(p.name, p.auto) for p in forces])
        self.widgets["forces_auto"] = reset
        return W.VBox([grid, reset])

    # ------------------------------------------------------------------ events
    def _control_moved(self, p, value):
        if self._syncing:
            return
        auto = self.widgets.get(f"{p.name}_auto")
        if auto is not None and auto.value:
            self._syncing = True  # the user chose a value: auto is off
            try:
                auto.value = False
            finally:
                self._syncing = False
        self._on_change(p.name, _from_widget(p, value))

    def _auto_toggled(self, p, on):
        if self._syncing:
            return
        self._on_change(p.name, p.auto if on else _from_widget(p, self.widgets[p.name].value))

    # ------------------------------------------------------------------ showing values
    def show(self, values, shown):
        """Show the analysis' values without reporting them back as changes."""
        self._syncing = True
        try:
            for p in parameters.SPEC:
                w = self.widgets.get(p.name)
                if w is None:
                    continue
                v = shown[p.name]
                if p.kind in ("int", "float"):
                    if v is None or v == "auto":
                        continue  # not known yet: keep what the control shows
                    v = _clip(v, w.min, w.max, p)
                if w.value != v:
                    w.value = v
                auto = self.widgets.get(f"{p.name}_auto")
                if auto is not None:
                    auto.value = values[p.name] == p.auto
        finally:
            self._syncing = False


def _decimals(step) -> int:
    """Digits after the point that show a value rounded to ``step`` (0.05 → 2, 0.5 → 1, 1 → 0)."""
    text = f"{float(step):.10f}".rstrip("0")
    return max(0, len(text.split(".")[1])) if "." in text else 0


def _clip(v, lo, hi, p):
    if v is None or v == "auto":
        v = lo
    v = min(max(v, lo), hi)
    return int(round(v)) if p.kind == "int" else float(v)


def _from_widget(p, value):
    if p.kind == "int":
        return int(value)
    if p.kind == "float":
        return float(value)
    return value
