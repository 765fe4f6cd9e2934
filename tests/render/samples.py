"""Shared by the render tests: a PNG file's first bytes, a formula and an answer that render."""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
QUADRATIC = r"x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a}"
# Two display formulas, one per syntax, each over several lines, and inline math after.
ROOTS = (
    "The roots are\n"
    "$$\n"
    "x = \\frac{-b \\pm \\sqrt{b^2-4ac}}{2a}\n"
    "$$\n"
    "and also\n"
    "\\[\n"
    "\\begin{aligned}\n"
    "a &= b \\\\\n"
    "  &= c\n"
    "\\end{aligned}\n"
    "\\]\n"
    "where $a \\ne 0$."
)
