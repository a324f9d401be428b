"""Image + annotation geometry layers: flip, crop, crop_annotation, resize, rotate, sliding_window, instances_crop, resize_annotation, restore_annotation_scale."""

EXAMPLE_SETTINGS: dict[str, dict] = {}
