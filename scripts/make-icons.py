#!/usr/bin/env python3
"""Draws natter's app icons (assets/icons/*.png) with the standard library only:
an accent-green (#00a884) disc with a white speech bubble, and a full-bleed
maskable variant whose bubble stays inside the 80 % safe zone. Run from the
repo root: python3 scripts/make-icons.py"""
import struct
import zlib

ACCENT = (0x00, 0xA8, 0x84)
WHITE = (0xFF, 0xFF, 0xFF)


def png(path, size, pixel):
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            row.extend(pixel(x + 0.5, y + 0.5, size))
        rows.append(bytes(row))
    raw = b"".join(rows)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    data = b"\x89PNG\r\n\x1a\n"
    data += chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0))
    data += chunk(b"IDAT", zlib.compress(raw, 9))
    data += chunk(b"IEND", b"")
    with open(path, "wb") as f:
        f.write(data)


def coverage(inside, x, y, n=4):
    """Fraction of an n×n supersampled pixel inside a shape (anti-aliasing)."""
    hits = 0
    for i in range(n):
        for j in range(n):
            if inside(x - 0.5 + (i + 0.5) / n, y - 0.5 + (j + 0.5) / n):
                hits += 1
    return hits / (n * n)


def bubble(cx, cy, r):
    """A round speech bubble of radius r centred at (cx, cy), tail bottom left."""
    def inside(x, y):
        dx, dy = x - cx, y - cy
        if dx * dx + (dy * 1.12) ** 2 <= r * r:
            return True
        # the tail: a triangle below-left of the body
        ax, ay = cx - r * 0.62, cy + r * 0.55
        bx, by = cx - r * 0.95, cy + r * 1.05
        qx, qy = cx - r * 0.15, cy + r * 0.80
        def side(px, py, x1, y1, x2, y2):
            return (px - x2) * (y1 - y2) - (x1 - x2) * (py - y2)
        d1, d2, d3 = side(x, y, ax, ay, bx, by), side(x, y, bx, by, qx, qy), side(x, y, qx, qy, ax, ay)
        neg = d1 < 0 or d2 < 0 or d3 < 0
        pos = d1 > 0 or d2 > 0 or d3 > 0
        return not (neg and pos)
    return inside


def blend(a, b, t):
    return tuple(round(a[i] * (1 - t) + b[i] * t) for i in range(3))


def icon(maskable):
    def pixel(x, y, size):
        c = size / 2
        if maskable:
            bg_cover = 1.0
        else:
            bg_cover = coverage(lambda px, py: (px - c) ** 2 + (py - c) ** 2 <= (size * 0.48) ** 2, x, y)
        # the bubble: smaller on the maskable icon (safe zone: a circle of 40 % radius)
        r = size * (0.22 if maskable else 0.26)
        t = coverage(bubble(c + size * 0.02, c - size * 0.02, r), x, y)
        rgb = blend(ACCENT, WHITE, t)
        alpha = round(255 * max(bg_cover, t if not maskable else 1.0))
        return bytes((*rgb, alpha))
    return pixel


if __name__ == "__main__":
    png("assets/icons/icon-192.png", 192, icon(False))
    png("assets/icons/icon-512.png", 512, icon(False))
    png("assets/icons/icon-maskable-512.png", 512, icon(True))
    print("wrote assets/icons/icon-192.png, icon-512.png, icon-maskable-512.png")
