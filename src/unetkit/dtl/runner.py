"""Pushing input images through a graph: per-element random generators, the depth-first element runner, and
the per-image job that worker processes and Ray tasks run (shared by the local and the Ray engines)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from unetkit.dtl.base import LayerContext
from unetkit.dtl.element import Element, ImageRef
from unetkit.dtl.graph import NULL, Graph
from unetkit.dtl.outputs import Output, SerializedAnnotation, format_reason
from unetkit.project import Item, Project, write_image

TMP_DIR = ".unetkit-dtl-tmp"  # inside the output folder: images encoded away from the writer


def derive_rng(seed: int | None, identity: tuple, layer_index: int, slot: int) -> np.random.Generator:
    """Generator for one layer call; depends only on the seed and what is processed, never on scheduling."""
    if seed is None:
        return np.random.default_rng()
    digest = hashlib.blake2b(repr((identity, layer_index, slot)).encode("utf-8"), digest_size=16).digest()
    entropy = [int(seed) & (2**64 - 1), int.from_bytes(digest, "little")]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


class ElementRunner:
    """Pushes the elements of one input image through the graph (depth-first, streaming)."""

    def __init__(self, graph: Graph, seed: int | None):
        self.graph, self.seed = graph, seed

    def _push(self, layer, el: Element, slot: int) -> Iterator[Output]:
        ctx = LayerContext(
            in_meta=layer.in_meta,
            out_meta=layer.out_meta,
            rng_factory=lambda: derive_rng(self.seed, el.identity, layer.index, slot),
        )
        for ordinal, (branch, out) in enumerate(layer.process(el, ctx)):
            if layer.is_save:
                yield Output(
                    out.project,
                    out.dataset,
                    out.out_dataset,
                    out.stem,
                    out.ext,
                    out.ann,
                    image=out.image,
                    extras=layer.render_extras(out),
                    dropped=out.dropped,
                )
                continue
            name = layer.dst[branch]
            if name == NULL:
                continue
            out = out.replace(lineage=(*el.lineage, (layer.index, slot, ordinal)))
            for consumer in self.graph.consumers.get(name, ()):
                yield from self._push(consumer, out, consumer.src.index(name))

    def run(self, project: Project, item: Item, data_layer) -> Iterator[Output]:
        """Outputs of one input image, in order (an exception stops it; earlier outputs stay valid)."""
        ann = item.read_annotation(project.meta)
        el = Element(
            image=ImageRef(item.image_path),
            ann=ann,
            project=project.name,
            dataset=item.dataset,
            item_name=item.name,
        )
        yield from self._push(data_layer, el, 0)


def make_jobs(graph: Graph, projects: list[Project]) -> list[tuple[int, Item, int]]:
    """One job per input image that a data layer takes: (project index, item, data layer index), in order."""
    by_name = {p.name: i for i, p in enumerate(projects)}
    jobs: list[tuple[int, Item, int]] = []
    for project in projects:
        for item in project.items():
            layer = next((la for la in graph.data_layers if la.matches(project.name, item.dataset)), None)
            if layer is not None:
                jobs.append((by_name[project.name], item, layer.index))
    return jobs


def process_item(
    runner: ElementRunner, project: Project, item: Item, layer_idx: int, tmp: Path
) -> tuple[list[Output], str | None]:
    """Process one input image away from the writer (a worker process or a Ray task): images and extras go to
    temp files in ``tmp`` (inside the output folder), annotations are serialised; an exception is returned as
    the reason the image is skipped, with the outputs made before it."""
    outputs: list[Output] = []
    try:
        for out in runner.run(project, item, runner.graph.layers[layer_idx]):
            if out.image.modified:
                out.image_file, out.temp_image = tmp / f"{uuid.uuid4().hex}{out.ext}", True
                write_image(out.image_file, out.image.get())
            else:
                out.image_file = out.image.path
            out.image = None
            out.ann = SerializedAnnotation(out.ann.height, out.ann.width, out.ann.to_json())
            for folder, arr in list(out.extras.items()):
                path = tmp / f"{uuid.uuid4().hex}.png"
                write_image(path, arr)
                out.extras[folder] = path
            outputs.append(out)
    except Exception as exc:  # per-image isolation
        return outputs, format_reason(exc)
    return outputs, None
