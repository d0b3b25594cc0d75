"""``tank-manage cache``: the image cache (``[cache]``) from the command line."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import click

from tank import errors
from tank.api.paths import image_id_of
from tank.cache.prefetch import entry_is_valid, prefetch_once
from tank.cli.options import config_options, load_config
from tank.errors import TankError
from tank.model import Context, Status
from tank.service import ImageService


@contextlib.contextmanager
def _service(config_path: Path | None, data_dir: Path | None) -> Iterator[ImageService]:
    config = load_config(config_path, data_dir)
    if not config.cache.enabled:
        raise click.ClickException(
            f"{config.where('cache')}: the image cache is off (enabled = false)"
        )
    try:
        service = ImageService.from_config(config)
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        yield service
    except TankError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        service.close()


def _when(epoch: float) -> str:
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@click.group()
def cache() -> None:
    """The image cache: local copies of images in remote stores."""


@cache.command("list")
@config_options
@click.option("--json", "as_json", is_flag=True, help="Print Glance's GET /v2/cache document.")
def list_(config_path: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """Cached images (least recently used first) and queued ones."""
    with _service(config_path, data_dir) as service:
        assert service.cache is not None
        cached, queued = service.cache.cached(), service.cache.queued()
    if as_json:
        doc = {"cached_images": [c.as_json() for c in cached], "queued_images": queued}
        click.echo(json.dumps(doc, indent=2))
        return
    click.echo(f"{'ID':36}  {'Size':>12}  {'Hits':>6}  {'Last accessed':20}  Cached")
    for c in cached:
        click.echo(
            f"{c.image_id:36}  {c.size:>12}  {c.hits:>6}  {_when(c.last_accessed):20}  "
            f"{_when(c.last_modified)}"
        )
    for image_id in queued:
        click.echo(f"{image_id:36}  queued")


@cache.command()
@config_options
@click.argument("image_id")
@click.option("--now", is_flag=True, help="Fetch it here and now, not in tank-api.")
def queue(config_path: Path | None, data_dir: Path | None, image_id: str, now: bool) -> None:
    """Queue an active image for prefetching by tank-api (or fetch it --now)."""
    with _service(config_path, data_dir) as service:
        assert service.cache is not None
        image = service.get(image_id_of(image_id), context=Context.admin())
        if image.deleted or image.status is not Status.ACTIVE:
            raise click.ClickException(
                f"only active images can be queued (image {image.id} is "
                f"{'deleted' if image.deleted else image.status})"
            )
        if not service.cacheable(image):
            raise click.ClickException(f"image {image.id} is in no store the cache serves")
        service.cache.queue(image.id)
        if now:
            prefetch_once(service)
            if not service.cache.is_cached(image.id):
                raise click.ClickException(f"image {image.id} could not be cached (see the log)")
            click.echo(f"cached {image.id}")
        else:
            click.echo(f"queued {image.id}")


@cache.command()
@config_options
@click.argument("image_id")
def delete(config_path: Path | None, data_dir: Path | None, image_id: str) -> None:
    """Remove an image from the cache and the queue."""
    with _service(config_path, data_dir) as service:
        assert service.cache is not None
        try:
            image_id = image_id_of(image_id)
        except errors.NotFound as exc:
            raise click.ClickException(str(exc)) from None
        cached = service.cache.evict(image_id)
        queued = service.cache.dequeue(image_id)
    if not (cached or queued):
        raise click.ClickException(f"image {image_id} is neither cached nor queued")
    click.echo(f"removed {image_id} from the {'cache' if cached else 'queue'}")


@cache.command()
@config_options
def prune(config_path: Path | None, data_dir: Path | None) -> None:
    """Remove least recently used copies until the cache fits [cache] max_size."""
    with _service(config_path, data_dir) as service:
        assert service.cache is not None
        files, size = service.cache.prune()
    click.echo(f"pruned {files} image(s), {size} bytes")


@cache.command()
@config_options
def clean(config_path: Path | None, data_dir: Path | None) -> None:
    """Remove stalled fills and copies of images no longer active (or whose size differs)."""
    with _service(config_path, data_dir) as service:
        assert service.cache is not None
        stalled, invalid = service.cache.clean(
            lambda image_id, size: entry_is_valid(service, image_id, size)
        )
    click.echo(f"removed {stalled} stalled fill(s) and {invalid} invalid cop(ies)")
