"""Supervisely project format: meta, annotations, geometries, bitmap codec, rasterisation, project IO."""

from unetkit.project.annotation import Annotation, Label, Tag
from unetkit.project.bitmap_codec import decode_bitmap_data, encode_bitmap_data
from unetkit.project.geometry import (
    Bitmap,
    Geometry,
    Point,
    Polygon,
    Polyline,
    RawGeometry,
    Rectangle,
    geometry_from_json,
)
from unetkit.project.images import PixelInfo, decode_pixels, display_rgb, pixel_info, read_pixels
from unetkit.project.io import (
    IMAGE_EXTENSIONS,
    Dataset,
    Item,
    Project,
    ProjectWriter,
    atomic_write_bytes,
    atomic_write_json,
    check_name,
    encode_image,
    image_size,
    load_json,
    read_image,
    write_image,
)
from unetkit.project.meta import ObjClass, ProjectMeta, TagMeta, color_to_rgb, random_color, rgb_to_color
from unetkit.project.rasterize import colorize_index_mask, rasterize, render_overlay
from unetkit.project.validate import Problem, validate_item, validate_project

__all__ = [
    "IMAGE_EXTENSIONS",
    "Annotation",
    "Bitmap",
    "Dataset",
    "Geometry",
    "Item",
    "Label",
    "ObjClass",
    "Point",
    "Polygon",
    "Polyline",
    "PixelInfo",
    "Problem",
    "Project",
    "ProjectMeta",
    "ProjectWriter",
    "RawGeometry",
    "Rectangle",
    "Tag",
    "TagMeta",
    "atomic_write_bytes",
    "atomic_write_json",
    "check_name",
    "color_to_rgb",
    "colorize_index_mask",
    "decode_bitmap_data",
    "decode_pixels",
    "display_rgb",
    "encode_bitmap_data",
    "encode_image",
    "geometry_from_json",
    "image_size",
    "load_json",
    "pixel_info",
    "rasterize",
    "random_color",
    "read_image",
    "read_pixels",
    "render_overlay",
    "rgb_to_color",
    "validate_item",
    "validate_project",
    "write_image",
]
