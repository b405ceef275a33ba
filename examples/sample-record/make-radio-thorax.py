#!/usr/bin/env python3
"""Draws radio-thorax.png: a synthetic, schematic chest X-ray for the carnet demo.

Not a real image of anyone: a gray gradient with a few shapes (lungs, spine, ribs, heart and a
right lower lobe opacity, matching the made-up discharge letter). Standard library only, and
deterministic, so re-running it gives the same bytes: python3 make-radio-thorax.py
"""
import math
import struct
import zlib

W, H = 192, 224


def pixel(x, y):
    # Soft tissue: a vertical gradient, brighter towards the abdomen.
    v = 150 + 50 * y / H
    # Lungs: dark ellipses (air lets X-rays through).
    for cx in (W * 0.30, W * 0.70):
        dx, dy = (x - cx) / (W * 0.19), (y - H * 0.45) / (H * 0.33)
        d = dx * dx + dy * dy
        if d < 1:
            v -= 95 * (1 - d) ** 0.3
    # Ribs: bright arcs across the lungs.
    for k in range(7):
        ry = H * (0.18 + 0.085 * k) + 10 * math.cos((x - W / 2) / W * math.pi)
        if abs(y - ry) < 2.5:
            v += 35
    # Spine and heart shadow: bright.
    if abs(x - W / 2) < W * 0.05:
        v += 30
    hx, hy = (x - W * 0.56) / (W * 0.16), (y - H * 0.62) / (H * 0.14)
    if hx * hx + hy * hy < 1:
        v += 35
    # The opacity of the right lower lobe (on the left of the image, as radiologists view it).
    ox, oy = (x - W * 0.28) / (W * 0.08), (y - H * 0.63) / (H * 0.06)
    if ox * ox + oy * oy < 1:
        v += 55 * (1 - (ox * ox + oy * oy))
    return max(0, min(255, int(v)))


def chunk(kind, data):
    c = kind + data
    return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xFFFFFFFF)


rows = b"".join(b"\x00" + bytes(pixel(x, y) for x in range(W)) for y in range(H))
png = (
    b"\x89PNG\r\n\x1a\n"
    + chunk(b"IHDR", struct.pack(">IIBBBBB", W, H, 8, 0, 0, 0, 0))
    + chunk(b"tEXt", b"Description\x00Synthetic chest X-ray drawing for the carnet demo; not a real patient")
    + chunk(b"IDAT", zlib.compress(rows, 9))
    + chunk(b"IEND", b"")
)
with open("radio-thorax.png", "wb") as f:
    f.write(png)
