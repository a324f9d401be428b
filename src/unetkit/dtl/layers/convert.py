"""Geometry conversion layers: bbox, bbox2poly, poly2bitmap, line2bitmap, rasterize, find_contours, approx_vector, bitmap2lines, skeletonize, split_masks, drop_noise, bitwise_masks, merge_bitmap_masks, generate_hints."""

EXAMPLE_SETTINGS: dict[str, dict] = {}
