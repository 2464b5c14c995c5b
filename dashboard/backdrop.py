"""The catalogue's places drawn as one picture: the background of a map without street tiles.

As markers, the ~2,300 places around a user were as many SVG elements, laid out again each
time Plotly draws the chart (several times while it settles into its column): about 0.25 s of
the browser's time per map, every visit. One image of the same dots costs the browser next to
nothing, whatever the number of places. The picture is made once per frame (a place and a
radius) and kept.
"""

from __future__ import annotations

import base64
import functools
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

LEVELS = 16  # shades of transparency: enough for smooth dot edges, 4 bits a pixel


@dataclass(frozen=True)
class Frame:
    """The rectangle the picture covers, in degrees, and its size in pixels (square)."""

    west: float
    east: float
    south: float
    north: float
    pixels: int


def picture(
    lat: np.ndarray,
    lng: np.ndarray,
    frame: Frame,
    *,
    radius_px: float = 2.0,
    colour: str = "#b0bec5",
    opacity: float = 0.7,
) -> str:
    """A PNG ``data:`` URI of a round dot (``radius_px`` pixels) at each place in ``frame``."""
    lat = np.ascontiguousarray(lat, dtype=np.float64)
    lng = np.ascontiguousarray(lng, dtype=np.float64)
    return _picture(lat.tobytes(), lng.tobytes(), frame, radius_px, colour, opacity)


@functools.lru_cache(maxsize=32)
def _picture(
    lat: bytes, lng: bytes, frame: Frame, radius_px: float, colour: str, opacity: float
) -> str:
    alpha = _dots(np.frombuffer(lat), np.frombuffer(lng), frame, radius_px, opacity)
    rgb = bytes(int(colour.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4))
    return "data:image/png;base64," + base64.b64encode(_png(alpha, rgb)).decode("ascii")


def _dots(
    lat: np.ndarray, lng: np.ndarray, frame: Frame, radius: float, opacity: float
) -> np.ndarray:
    """Each pixel's opacity (0–1), row 0 at the north edge: dots that overlap darken each
    other as translucent markers do."""
    size = frame.pixels
    inside = (lat >= frame.south) & (lat <= frame.north) & (lng >= frame.west) & (lng <= frame.east)
    x = (lng[inside] - frame.west) / (frame.east - frame.west) * size
    y = (frame.north - lat[inside]) / (frame.north - frame.south) * size
    # The light each pixel lets through, as a logarithm: overlapping dots add up.
    through = np.zeros((size, size), dtype=np.float64)
    reach = math.ceil(radius) + 1
    cx, cy = np.floor(x).astype(int), np.floor(y).astype(int)
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            px, py = cx + dx, cy + dy
            # The share of the pixel inside the disc, approximated by its centre's distance.
            share = np.clip(radius + 0.5 - np.hypot(px + 0.5 - x, py + 0.5 - y), 0.0, 1.0)
            keep = (px >= 0) & (px < size) & (py >= 0) & (py < size) & (share > 0)
            dot = np.minimum(share[keep] * opacity, 1 - 1e-9)  # log(1 - 1) has no value
            np.add.at(through, (py[keep], px[keep]), np.log1p(-dot))
    return -np.expm1(through)


def _png(alpha: np.ndarray, rgb: bytes) -> bytes:
    """A 4-bit palette PNG (Pillow): one colour in :data:`LEVELS` transparencies, a few tens
    of KB for a map's frame."""
    index = np.rint(np.clip(alpha, 0.0, 1.0) * (LEVELS - 1)).astype(np.uint8)
    image = Image.frombytes("P", (index.shape[1], index.shape[0]), index.tobytes())
    image.putpalette(rgb * LEVELS)
    transparency = bytes(round(255 * i / (LEVELS - 1)) for i in range(LEVELS))
    out = io.BytesIO()
    image.save(out, format="PNG", bits=4, transparency=transparency, optimize=False)
    return out.getvalue()
