"""A PNG picture of a rich renderable, as a dark terminal would show it.

Lines are laid out by rich itself (:meth:`rich.console.Console.render_lines`), then each
styled segment is drawn with Pillow in DejaVu Sans Mono, the monospace font matplotlib
ships, so no system font, browser or SVG converter is needed.

Examples
--------
>>> import tempfile
>>> from rich.text import Text
>>> path = Path(tempfile.mkdtemp()) / "hello.png"
>>> size = save_png(Text("hello", style="bold green"), path, width=20)
>>> size[0] > 0 and size[1] > 0 and path.stat().st_size > 0
True
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
from PIL import Image, ImageDraw, ImageFont
from rich.color_triplet import ColorTriplet
from rich.console import Console, RenderableType
from rich.style import Style
from rich.terminal_theme import MONOKAI, TerminalTheme

_FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
PAD = 12


def _font(bold: bool, size: int) -> ImageFont.FreeTypeFont:
    name = "DejaVuSansMono-Bold.ttf" if bold else "DejaVuSansMono.ttf"
    return ImageFont.truetype(str(_FONTS / name), size)


def _rgb(triplet: ColorTriplet) -> tuple[int, int, int]:
    return (triplet.red, triplet.green, triplet.blue)


def _colors(style: Style, theme: TerminalTheme) -> tuple[tuple[int, int, int], ...]:
    fg = _rgb(style.color.get_truecolor(theme)) if style.color else _rgb(theme.foreground_color)
    bg = (
        _rgb(style.bgcolor.get_truecolor(theme, foreground=False))
        if style.bgcolor
        else _rgb(theme.background_color)
    )
    if style.reverse:
        fg, bg = bg, fg
    if style.dim:
        fg = tuple((a + b) // 2 for a, b in zip(fg, bg, strict=True))  # type: ignore[assignment]
    return fg, bg


def save_png(
    renderable: RenderableType,
    path: Path,
    width: int = 110,
    font_size: int = 14,
    theme: TerminalTheme = MONOKAI,
) -> tuple[int, int]:
    """Draw ``renderable`` at ``width`` columns into ``path``; return the image size."""
    console = Console(
        width=width, file=io.StringIO(), color_system="truecolor", force_terminal=True
    )
    lines = console.render_lines(renderable, console.options, pad=False)
    regular, bold = _font(False, font_size), _font(True, font_size)
    cell_w = int(round(regular.getlength("M")))
    ascent, descent = regular.getmetrics()
    cell_h = ascent + descent + 2
    size = (PAD * 2 + cell_w * width, PAD * 2 + cell_h * len(lines))
    image = Image.new("RGB", size, _rgb(theme.background_color))
    draw = ImageDraw.Draw(image)
    for y, line in enumerate(lines):
        x = 0
        top = PAD + y * cell_h
        for segment in line:
            if segment.control or not segment.text:
                continue
            style = segment.style or Style()
            fg, bg = _colors(style, theme)
            cells = len(segment.text)
            left = PAD + x * cell_w
            if bg != _rgb(theme.background_color):
                draw.rectangle((left, top, left + cells * cell_w, top + cell_h), fill=bg)
            font = bold if style.bold else regular
            for i, char in enumerate(segment.text):
                if char != " ":
                    draw.text((left + i * cell_w, top + 1), char, font=font, fill=fg)
            x += cells
    image.save(path, optimize=True)
    return size
