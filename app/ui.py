"""The Gradio Blocks layout; every event calls its function twin in :mod:`rrsis_app.state`.

The predictor and store live in one :class:`~rrsis_app.state.Services` shared by all tabs; each tab's
:class:`~rrsis_app.state.AppState` sits in a ``gr.State`` (two users never see each other's prompts).
"""

from __future__ import annotations

import gradio as gr
from rrsis_app import state as S

CSS = """
#rrsis-image img { cursor: crosshair; }
#rrsis-status { font-size: 0.9em; }
#rrsis-legend { font-size: 0.85em; opacity: 0.85; }
"""

LEGEND = (
    "<span style='color:#00d2ff'>■</span> mask · "
    "<span style='color:#28c846'>●</span> positive / <span style='color:#eb3232'>●</span> negative click "
    "(numbered in order) · <span style='color:#ffd700'>▭</span> box · "
    "<span style='color:#ff8c00'>①</span> numbered outlines = candidate regions when the expression is "
    "ambiguous · ◎? = suggested click · uncertainty: dark → red → yellow = more unsure"
)


def build_app(services: S.Services, title: str = "rrsis — say what to segment") -> gr.Blocks:
    """The web app for ``services`` (not launched). Queue with :func:`launch` or ``demo.queue(...)``."""

    def out(st: S.AppState):
        v = S.views(st, services)
        files = gr.update(value=v["files"], visible=bool(v["files"]))
        brush_canvas = S.brush_canvas(st) if S.brush_is_stale(st) else gr.update()  # another image or mask
        return st, v["image"], v["chat"], v["status"], v["history"], files, brush_canvas

    def ensure(st):
        return st if st is not None else S.new_state(services)

    def on_load(st):
        return out(ensure(st))

    def on_sample(st, evt: gr.SelectData, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        return out(S.load_sample(ensure(st), services, evt.index, progress=progress))

    def on_upload(st, file, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        return out(S.load_upload(ensure(st), services, file, progress=progress))

    def on_message(st, text, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        return (*out(S.send_message(ensure(st), services, text, progress=progress)), "")

    def on_click(st, evt: gr.SelectData):
        st = ensure(st)
        idx = evt.index if isinstance(evt.index, (list, tuple)) and len(evt.index) == 2 else None
        if idx is None:
            st.say("⚠️ I could not read where you clicked; click inside the image.")
            return out(st)
        return out(S.click(st, services, float(idx[0]), float(idx[1])))

    def on_command(name):
        def handler(st, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
            return out(S.command(ensure(st), services, name, progress=progress))

        handler.__name__ = f"on_{name}"
        return handler

    def on_mode(st, mode):
        return out(S.set_mode(ensure(st), mode))

    def on_opacity(st, value):
        return out(S.set_opacity(ensure(st), value))

    def on_uncertainty(st, value):
        return out(S.set_uncertainty(ensure(st), value))

    def on_brush_load(st):
        return S.brush_canvas(ensure(st))

    def on_brush_open(st):
        st = S.set_brush_open(ensure(st), True)
        return st, S.brush_canvas(st)

    def on_brush_close(st):
        return S.set_brush_open(ensure(st), False)

    def on_brush_apply(st, strokes):
        st = S.apply_brush(ensure(st), services, strokes)
        return (*out(st)[:-1], S.brush_canvas(st))

    with gr.Blocks(title=title, fill_width=True) as demo:
        gr.Markdown(f"## {title}\nPick an image, type what you want segmented, refine with clicks or "
                    "follow-ups, accept.")
        st = gr.State(None, delete_callback=S.close)
        gallery = gr.Gallery(
            value=[(str(s.thumbnail or s.path), s.name) for s in services.samples],
            label="Sample images (real aerial tiles): click one to start", columns=8, height=120,
            allow_preview=False, elem_id="rrsis-gallery", object_fit="cover", buttons=[],
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=3):
                with gr.Row():
                    mode = gr.Radio(list(S.MODE_LABELS.values()), value=S.MODE_LABELS["positive"],
                                    label="Click adds", elem_id="rrsis-mode", scale=3)
                    opacity = gr.Slider(0.0, 1.0, value=0.45, step=0.05, label="Mask opacity",
                                        elem_id="rrsis-opacity", scale=2)
                    uncertainty = gr.Checkbox(False, label="Show uncertainty", elem_id="rrsis-uncertainty",
                                              scale=1, min_width=170)
                image = gr.Image(label="Image: click to add prompts", interactive=False, type="numpy",
                                 format="jpeg", elem_id="rrsis-image", height=600, buttons=["fullscreen"])
                status = gr.Markdown(elem_id="rrsis-status")
                gr.Markdown(LEGEND, elem_id="rrsis-legend")
                with gr.Accordion("Brush: touch up the mask by hand", open=False,
                                  elem_id="rrsis-brush-box") as brush_box:
                    gr.Markdown("Paint **blue** to add to the current mask and **pink** to remove from it (the "
                                "palette button picks the colour; the eraser wipes strokes), then apply: the result "
                                "becomes the current mask and the prior of your next turn (undo takes it back). While "
                                "this panel is open the canvas follows every turn: apply your strokes before the next "
                                "click or sentence.", elem_id="rrsis-brush-help")
                    brush = gr.ImageEditor(
                        type="numpy", image_mode="RGBA", label="Brush", elem_id="rrsis-brush", height=600,
                        brush=gr.Brush(colors=[S.BRUSH_ADD, S.BRUSH_REMOVE], color_mode="fixed", default_size=12),
                        eraser=gr.Eraser(default_size=12), layers=False, transforms=(), sources=())
                    with gr.Row():
                        b_brush_load = gr.Button("Load the current mask", size="sm", elem_id="rrsis-brush-load")
                        b_brush_apply = gr.Button("Apply the strokes", size="sm", variant="primary",
                                                  elem_id="rrsis-brush-apply")
            with gr.Column(scale=2):
                chat = gr.Chatbot(label="Assistant", height=470, elem_id="rrsis-chat", buttons=["copy"],
                                  feedback_options=None)
                msg = gr.Textbox(placeholder="Describe the object, e.g. “the largest field”, or type undo / "
                                 "redo / clear / accept / next", show_label=False, elem_id="rrsis-msg",
                                 submit_btn="Send", max_length=2000)
                with gr.Row():
                    b_undo = gr.Button("↶ Undo", size="sm", elem_id="rrsis-undo")
                    b_redo = gr.Button("↷ Redo", size="sm", elem_id="rrsis-redo")
                    b_clear = gr.Button("✕ Clear", size="sm", elem_id="rrsis-clear")
                    b_accept = gr.Button("✓ Accept", size="sm", variant="primary", elem_id="rrsis-accept")
                with gr.Row():
                    b_prev = gr.Button("◀ Previous image", size="sm", elem_id="rrsis-prev")
                    b_next = gr.Button("Next image ▶", size="sm", elem_id="rrsis-next")
                    upload = gr.UploadButton("⇪ Upload image", size="sm", file_count="single",
                                             elem_id="rrsis-upload")
                files = gr.File(label="Downloads (mask PNG, GeoJSON, COCO JSON)", file_count="multiple",
                                interactive=False, elem_id="rrsis-files", visible=False)
                with gr.Accordion("Session history", open=False):
                    history = gr.Markdown(elem_id="rrsis-history")
        outputs = [st, image, chat, status, history, files, brush]
        demo.load(on_load, inputs=[st], outputs=outputs)
        gallery.select(on_sample, inputs=[st], outputs=outputs)
        upload.upload(on_upload, inputs=[st, upload], outputs=outputs)
        msg.submit(on_message, inputs=[st, msg], outputs=[*outputs, msg], show_progress="minimal")
        image.select(on_click, inputs=[st], outputs=outputs, show_progress="hidden")
        for button, name in ((b_undo, "undo"), (b_redo, "redo"), (b_clear, "clear"), (b_accept, "accept"),
                             (b_prev, "previous"), (b_next, "next")):
            button.click(on_command(name), inputs=[st], outputs=outputs, show_progress="minimal")
        b_brush_load.click(on_brush_load, inputs=[st], outputs=[brush], show_progress="hidden")
        brush_box.expand(on_brush_open, inputs=[st], outputs=[st, brush], show_progress="hidden")
        brush_box.collapse(on_brush_close, inputs=[st], outputs=[st], show_progress="hidden")
        b_brush_apply.click(on_brush_apply, inputs=[st, brush], outputs=outputs, show_progress="minimal")
        mode.change(on_mode, inputs=[st, mode], outputs=outputs, concurrency_limit=None, show_progress="hidden")
        opacity.release(on_opacity, inputs=[st, opacity], outputs=outputs, concurrency_limit=None,
                        show_progress="hidden")
        uncertainty.change(on_uncertainty, inputs=[st, uncertainty], outputs=outputs, concurrency_limit=None,
                           show_progress="hidden")
    demo.rrsis_services = services
    return demo


def launch(demo: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, auth: tuple[str, str] | None = None,
           concurrency: int = 1, block: bool = True, quiet: bool = False):
    """Queue (model events ``concurrency`` at a time) and serve; returns the app's URL when not blocking."""
    services: S.Services = demo.rrsis_services
    demo.queue(default_concurrency_limit=concurrency, max_size=64)
    demo.launch(
        server_name=host, server_port=port, auth=auth, prevent_thread_lock=not block, quiet=quiet,
        show_error=False, max_file_size=4 * services.limits.max_upload_bytes,
        allowed_paths=[str(services.workdir)], inbrowser=False, ssr_mode=False, css=CSS,
    )
    return demo.local_url
