"""Form bodies of the original protocol: multipart or urlencoded, JSON parts as file parts or plain fields."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from unetkit.serving.limits import ApiError
from unetkit.serving.middleware import BodyTooLargeError

JSON_PARTS = ("annotation", "meta", "mode")


async def read_form(request: Request, max_bytes: int) -> tuple[dict[str, bytes | str], set[str]]:
    """Multipart or urlencoded form → ({name: bytes | str}, names sent as files); JSON parts may be either."""
    content_type = request.headers.get("content-type", "")
    if not content_type and not await request.body():
        return {}, set()  # no parts at all (e.g. get_out_meta with the defaults)
    if not content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        raise ApiError(
            415,
            "unsupported_media_type",
            f"expected a multipart/form-data body, got {content_type or 'none'!r}",
        )
    try:
        form = await request.form(max_files=8, max_fields=16, max_part_size=max_bytes)
    except StarletteHTTPException as exc:
        raise ApiError(400, "malformed_form", f"the form body could not be parsed: {exc.detail}") from exc
    except (ApiError, BodyTooLargeError):
        raise
    except Exception as exc:  # python-multipart parse errors
        raise ApiError(400, "malformed_form", f"the form body could not be parsed: {exc}") from exc
    parts: dict[str, bytes | str] = {}
    files: set[str] = set()
    try:
        for name, value in form.multi_items():
            if name in parts:
                raise ApiError(400, "duplicate_part", f"the part {name!r} is given more than once")
            if isinstance(value, StarletteUploadFile):
                parts[name] = await value.read()
                files.add(name)
            else:
                parts[name] = value
    finally:
        await form.close()
    unknown = sorted(k for k in parts if k not in ("image", *JSON_PARTS))
    if unknown:
        raise ApiError(
            400, "unknown_part", f"unknown form parts {unknown}; expected image, {', '.join(JSON_PARTS)}"
        )
    return parts, files


def multipart_schema(
    required: list[str], file_parts: list[str], field_parts: list[str] | None = None
) -> dict:
    props: dict = {}
    for name in file_parts:
        props[name] = {
            "type": "string",
            "format": "binary",
            "description": f"`{name}` (a file; JSON parts may also be form fields)",
        }
    for name in field_parts or []:
        props[name] = {"type": "string", "description": f"`{name}` as a JSON string"}
    return {
        "required": bool(required),
        "content": {
            "multipart/form-data": {"schema": {"type": "object", "properties": props, "required": required}}
        },
    }
