"""Views of the v1 API: parse, call one service or selector, render (no business rules here)."""
