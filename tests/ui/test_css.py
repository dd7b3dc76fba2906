"""The stylesheet's colours meet WCAG AA contrast, in light and in dark mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gitconf.ui import feature

CSS = Path(feature.__file__).parent / "static" / "gitconf.css"
# (foreground, background, minimum): text pairs the pages use need 4.5:1, the focus ring 3:1.
PAIRS = [
    ("text", "bg", 4.5), ("text", "panel", 4.5), ("text", "code-bg", 4.5),
    ("muted", "bg", 4.5), ("muted", "panel", 4.5), ("muted", "code-bg", 4.5),
    ("muted", "bad-bg", 4.5), ("accent", "panel", 4.5), ("accent", "bg", 4.5),
    ("accent-text", "accent", 4.5), ("ok", "ok-bg", 4.5), ("bad", "bad-bg", 4.5),
    ("bad", "panel", 4.5), ("warn", "warn-bg", 4.5), ("warn", "panel", 4.5),
    ("focus", "bg", 3.0), ("focus", "panel", 3.0),
]  # fmt: skip


def _colours() -> dict[str, dict[str, str]]:
    text = CSS.read_text()
    light_part, dark_part = text.split("@media (prefers-color-scheme: dark)", 1)

    def found(block: str) -> dict[str, str]:
        return dict(re.findall(r"--([a-z-]+):\s*(#[0-9a-fA-F]{6})", block))

    light = found(light_part)
    return {"light": light, "dark": {**light, **found(dark_part.split("}\n}", 1)[0])}}


def _luminance(colour: str) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: str, b: str) -> float:
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_contrast_is_computed_as_wcag_says() -> None:
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("mode", ["light", "dark"])
@pytest.mark.parametrize(("fg", "bg", "minimum"), PAIRS)
def test_each_pair_meets_its_minimum(mode: str, fg: str, bg: str, minimum: float) -> None:
    colours = _colours()[mode]
    assert contrast(colours[fg], colours[bg]) >= minimum, (mode, fg, colours[fg], bg, colours[bg])
