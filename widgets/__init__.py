"""Interactive layer of motiflab (ipywidgets + Bokeh)."""
