"""Detection boxes drawn into a Pillow image (event thumbnails, ``/snapshot.jpg?boxes=1``).

Colours come from the label through the same small string hash the status page's script uses,
so a "car" is the same colour in the live overlay, the charts and the thumbnails.
"""

from __future__ import annotations

PALETTE = (
    "#ff3b30", "#34c759", "#0a84ff", "#ffcc00", "#af52de",
    "#ff9500", "#5ac8fa", "#ff2d55", "#a2d729", "#00c7be",
)  # fmt: skip


def label_color(label: str) -> str:
    """``PALETTE[h % 10]`` with ``h = h * 31 + code`` over the label's characters, mod 2**32
    (the page computes the same in JavaScript)."""
    h = 0
    for ch in str(label):
        h = (h * 31 + ord(ch)) & 0xFFFFFFFF
    return PALETTE[h % len(PALETTE)]


def draw_boxes(img, detections, scale: float = 1.0) -> None:
    """Draw ``{"label", "score", "box": [x0, y0, x1, y1]}`` boxes (frame pixels, multiplied by
    ``scale`` for a resized image) with a label tag, in place."""
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(img)
    width = max(2, round(min(img.size) / 160))
    try:
        font = ImageFont.load_default(size=max(10, round(min(img.size) / 22)))
    except TypeError:  # Pillow < 10.1: one bitmap size
        font = ImageFont.load_default()
    # weakest first, so the best box and its tag are drawn last, on top of overlapping ones
    for d in sorted(detections, key=lambda d: float(d["score"])):
        x0, y0, x1, y1 = (float(v) * scale for v in d["box"])
        if x1 <= x0 or y1 <= y0:
            continue
        color = label_color(d["label"])
        draw.rectangle((x0, y0, x1, y1), outline=color, width=width)
        text = f"{d['label']} {round(100 * float(d['score']))}%"
        if d.get("classes"):  # a cascade: the species beside the box
            top1 = d["classes"][0]
            text += f": {top1['label']} {round(100 * float(top1['score']))}%"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        w, h = right - left + 2 * width, bottom - top + 2 * width
        ty = y0 - h if y0 - h >= 0 else y0  # the tag above the box, inside at the top edge
        draw.rectangle((x0, ty, x0 + w, ty + h), fill=color)
        draw.text((x0 + width - left, ty + width - top), text, fill="#000000", font=font)
