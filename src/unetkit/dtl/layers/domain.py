"""Domain-specific layers: contour_sliding_box, drop_lines_by_length, drop_lines_under_polygon, merge_lines, road_lines, find_cracknets."""

EXAMPLE_SETTINGS: dict[str, dict] = {}
