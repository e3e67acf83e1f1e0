"""One Bokeh message per view update in JupyterLab: the page applies it at once and repaints once.

jupyter_bokeh's ``BokehModel`` sends every document change as its own
PATCH-DOC message, even inside ``Document.hold``. The page applies each
message in a task of its own and repaints the figures between them: one view
update of the explorer (new coordinates, colours, ranges, gallery) reached the
page as ~38 messages, the figures repainted 8-10 times, and the axis ranges
were applied ~0.1 s after the points, behind the first message's work.

:func:`bokeh_widget` makes a ``BokehModel`` that can collect those changes,
and :func:`one_patch` is the ``with`` block around an update: the changes made
inside go to each such widget of the document as a single PATCH-DOC message
(Bokeh's protocol carries a list of events per message, which BokehJS applies
in order, as Bokeh's own server sends them), its arrays inline
(:func:`_inline_patch`). Outside a block, or for a plain
``BokehModel``, changes are sent as before.
"""
from __future__ import annotations

import contextlib
import threading
import weakref

__all__ = ["bokeh_widget", "one_patch"]

#: the collecting widgets of each document
_RECEIVERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
#: held while one Bokeh message's comm messages are sent
_SEND_LOCK = threading.RLock()
_CLASS = None


def _widget_class():
    """``BokehModel`` with a collecting ``_document_patched`` (defined on first use: jupyter_bokeh is optional)."""
    global _CLASS
    if _CLASS is None:
        from jupyter_bokeh import BokehModel

        class OnePatchBokehModel(BokehModel):
            """A ``BokehModel`` that sends the changes of a :func:`one_patch` block as one message."""

            _pending = None

            def _document_patched(self, event):
                if event.setter is self:  # the page's own change, coming back
                    return
                with _LOCK:  # a block may end in another thread while this one adds its change
                    if self._pending is not None:
                        self._pending.append(event)
                        return
                with _SEND_LOCK:
                    super()._document_patched(event)

            def _send_events(self, events):
                msg = _inline_patch(events)
                # one Bokeh message is three comm messages (header, metadata, content; the arrays
                # are inline), which the page reassembles in order: the kernel's main thread (a
                # selection, the playback frames) and the explorer's worker must not interleave theirs
                with _SEND_LOCK:
                    self.send({"msg": "patch", "payload": msg.header_json})
                    self.send({"msg": "patch", "payload": msg.metadata_json})
                    self.send({"msg": "patch", "payload": msg.content_json})

        _CLASS = OnePatchBokehModel
    return _CLASS


def _inline_patch(events):
    """A PATCH-DOC message of ``events`` with its arrays inline instead of as binary buffers.

    jupyter_bokeh sends each buffer as two more comm messages, each relayed by
    the Jupyter server on its own: a view update's eight 21 kB arrays at 5k
    columns were 19 comm messages (3 + 2 per array), arriving over ~25 ms;
    inline, the update is 3. Bokeh gzips (level 2) and base64-encodes inline arrays: at 55k
    columns, mostly sparse rasters, a release sends 1.8 MB instead of 8.1 MB.
    """
    from bokeh.core.serialization import Serializer
    from bokeh.protocol.messages.patch_doc import patch_doc

    # what patch_doc.create does, with deferred=False (no buffers)
    [doc] = {event.document for event in events}
    serializer = Serializer(references=doc.models.synced_references, deferred=False)
    content = {"events": serializer.encode(events)}
    doc.models.flush_synced(lambda model: not serializer.has_ref(model))
    return patch_doc(patch_doc.create_header(), {}, content)


def bokeh_widget(root):
    """A jupyter_bokeh widget showing ``root`` whose :func:`one_patch` blocks reach the page as one message."""
    widget = _widget_class()(root)
    doc = root.document
    if doc is not None:
        with _LOCK:
            _RECEIVERS.setdefault(doc, weakref.WeakSet()).add(widget)
    return widget


@contextlib.contextmanager
def one_patch(doc):
    """Hold ``doc``'s changes made in the block and send them as one message per :func:`bokeh_widget`.

    Without such a widget (tests, exported HTML) it is ``doc.hold("combine")``:
    each model property still changes once per block.
    """
    if doc is None:
        yield
        return
    with _LOCK:
        receivers = [w for w in _RECEIVERS.get(doc, ()) if w._pending is None]
        for w in receivers:
            w._pending = []
    doc.hold("combine")
    try:
        yield
    finally:
        try:
            doc.unhold()  # hands the combined events to the receivers, which collect them
        finally:
            for w in receivers:
                with _LOCK:
                    events, w._pending = w._pending, None
                if events:
                    w._send_events(events)
