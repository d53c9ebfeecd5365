"""Pictures of the sidebar's panels in the states users meet, drawn from the panels' own draw()
code (a recording layout, then matplotlib): no screenshot needs a window, so headless bpy can
make them. The states are made with the real operators on the Rigify metarig and the shipped
model, embedded.

    .venv/bin/python -m tools.panel_pictures [--out docs/panels.png]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class Recorder:
    """Enough of bpy's UILayout to record what a panel draws: lines of cells, each cell
    (kind, text, enabled)."""

    def __init__(self, lines: list, line: list | None = None, enabled: bool = True, lists=None):
        object.__setattr__(self, "_lines", lines)
        object.__setattr__(self, "_line", line)
        object.__setattr__(self, "_lists", lists)
        object.__setattr__(self, "enabled", enabled)

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)

    def _add(self, cell):
        cell = (*cell, self.enabled)
        if self._line is not None:
            self._line.append(cell)
        else:
            self._lines.append([cell])

    def _child(self, horizontal: bool):
        line = [] if horizontal else None
        if line is not None:
            self._lines.append(line)
        return _Child(self, line)

    def row(self, **_):
        return self._child(True)

    def column(self, **_):
        return self._child(False)

    box = split = column

    def separator(self, **_):
        self._lines.append([])

    def label(self, text="", icon="NONE", **_):
        self._add(("label", text))

    def prop(self, data, name, text=None, **_):
        rna = data.bl_rna.properties[name]
        value = getattr(data, name)
        shown = rna.name if text is None else text
        if rna.type == "BOOLEAN":
            self._add(("check", f"{'[x]' if value else '[ ]'} {shown}"))
        elif rna.type == "ENUM":
            items = {i.identifier: i.name for i in rna.enum_items}
            self._add(("field", f"{shown + ': ' if shown else ''}{items.get(value, value)}"))
        elif rna.type == "POINTER":
            self._add(("field", f"{shown}: {value.name if value is not None else '-'}"))
        elif rna.type == "FLOAT":
            self._add(("field", f"{shown + ': ' if shown else ''}{value:.1f}"))
        else:
            self._add(("field", f"{shown + ': ' if shown else ''}{value}"))

    def operator(self, idname, text=None, icon="NONE", **_):
        import bpy

        module, name = idname.split(".")
        own = getattr(getattr(bpy.ops, module), name).get_rna_type().name
        self._add(("button", text or own))  # an icon-only button shows its tooltip's title
        return type("Props", (), {})()

    def template_list(self, list_type, _list_id, data, prop, active_data, active_prop, *_args, **_kw):
        items, active = getattr(data, prop), getattr(active_data, active_prop)
        for i, item in enumerate(items):
            self._lines.append([("list", f"{'> ' if i == active else '   '}{_item_text(item)}", self.enabled)])
        if not len(items):
            self._lines.append([("list", "(empty list)", self.enabled)])


class _Child(Recorder):
    def __init__(self, parent: Recorder, line):
        super().__init__(parent._lines, line, parent.enabled, parent._lists)


def _item_text(item) -> str:
    for name in ("label", "prompt", "caption", "name"):
        value = getattr(item, name, "")
        if value:
            extra = f" ({item.seconds:.1f} s)" if hasattr(item, "seconds") else ""
            return f"{value}{extra}"
    return "?"


def record(panel_cls, context) -> list:
    lines: list = []
    panel_cls.draw(type("Drawn", (), {"layout": Recorder(lines)})(), context)
    return lines


def draw(panels: list[tuple[str, str, list]], path: Path) -> Path:
    """panels: (state, panel title, recorded lines) -> one picture, a column of panels per state."""
    from backend.figures import pyplot, save_figure

    plt = pyplot()
    states = list(dict.fromkeys(state for state, _, _ in panels))
    heights = {s: sum(len(lines) + 2 for st, _, lines in panels if st == s) for s in states}
    tall = max(heights.values())
    fig, axes = plt.subplots(1, len(states), figsize=(4.4 * len(states), 0.26 * tall + 0.6))
    for ax, state in zip(axes if len(states) > 1 else [axes], states):
        ax.set_xlim(0, 1)
        ax.set_ylim(-tall, 1)
        ax.axis("off")
        ax.set_title(state, fontsize=10, loc="left")
        y = 0.0
        for st, title, lines in panels:
            if st != state:
                continue
            top = y
            ax.text(0.02, y - 0.5, title, fontsize=9, weight="bold", va="center")
            y -= 1.2
            for line in lines:
                if not line:
                    y -= 0.4
                    continue
                width = 0.94 / len(line)
                for i, (kind, text, enabled) in enumerate(line):
                    x = 0.03 + i * width
                    color = "#222222" if enabled else "#9a9a9a"
                    if kind == "button":
                        ax.add_patch(plt.Rectangle((x, y - 0.42), width - 0.01, 0.84, fc="#dde3ea" if enabled
                                                   else "#f0f0f0", ec="#8a96a3", lw=0.6))
                        ax.text(x + (width - 0.01) / 2, y, text[:34], fontsize=7, ha="center", va="center", color=color)
                    elif kind in ("field", "list"):
                        ax.add_patch(plt.Rectangle((x, y - 0.42), width - 0.01, 0.84, fc="#ffffff", ec="#c4c4c4",
                                                   lw=0.6))
                        ax.text(x + 0.01, y, text[: int(60 * width) + 8], fontsize=7, va="center", color=color)
                    else:
                        ax.text(x + 0.005, y, text[: int(70 * width) + 10], fontsize=7, va="center", color=color)
                y -= 1.0
            ax.add_patch(plt.Rectangle((0.01, y + 0.3), 0.98, top - y - 0.3, fc="none", ec="#6d7a88", lw=0.8))
            y -= 0.8
    return save_figure(fig, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "docs" / "panels.png"))
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    import bpy  # noqa: I001 (bpy first: addon_utils lives in Blender's scripts, on the path once bpy is in)
    import addon_utils

    from tools.addon_import import import_addon

    bpy.ops.wm.read_factory_settings(use_empty=True)
    import_addon()
    addon_utils.enable("dynamic_pose", default_set=True)
    addon_utils.enable("rigify", default_set=True)
    prefs = bpy.context.preferences.addons["dynamic_pose"].preferences
    prefs.mode, prefs.device, prefs.backend_dir = "EMBEDDED", "cpu", str(ROOT)
    from dynamic_pose.panels import sidebar as ui

    ctx = bpy.context
    s = ctx.scene.dynamicpose
    shots = []
    for cls in (ui.DYNAMICPOSE_PT_generate, ui.DYNAMICPOSE_PT_inbetween):
        shots.append(("An empty scene", cls.bl_label, record(cls, ctx)))
    bpy.ops.object.armature_human_metarig_add()
    s.prompt, s.seconds, s.variations = "a person walks forward", 2.0, 3
    assert bpy.ops.dynamicpose.generate() == {"FINISHED"}
    assert bpy.ops.dynamicpose.take_step(step=1) == {"FINISHED"}
    for cls in (ui.DYNAMICPOSE_PT_generate, ui.DYNAMICPOSE_PT_takes):
        shots.append(("Three takes of a prompt, the second playing", cls.bl_label, record(cls, ctx)))
    assert bpy.ops.dynamicpose.take_accept() == {"FINISHED"}
    for text, sec in (("a person walks forward", 3.0), ("waves with the left hand", 2.0), ("runs", 4.0)):
        row = s.timeline.add()
        row.prompt, row.seconds = text, sec
    s.edit_part = "UPPER"
    assert bpy.ops.dynamicpose.backend_check() == {"FINISHED"}
    for cls in (ui.DYNAMICPOSE_PT_timeline, ui.DYNAMICPOSE_PT_edit, ui.DYNAMICPOSE_PT_backend):
        shots.append(("A take kept: timeline, edit, backend", cls.bl_label, record(cls, ctx)))
    print(f"wrote {draw(shots, Path(args.out))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
