"""Photometric layers (pixels only): noise, blur, contrast_brightness, random_color."""

EXAMPLE_SETTINGS: dict[str, dict] = {}
