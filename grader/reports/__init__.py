"""Renderers of a GradeResult: terminal table now; HTML, Markdown and Gradescope formats later."""
