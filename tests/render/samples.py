"""Shared by the render tests: a PNG file's first bytes and a display formula that renders."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUADRATIC = r"x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}"
