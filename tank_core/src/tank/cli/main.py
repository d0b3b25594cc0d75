"""``tank``: the Glance-style command line, talking to a tank-api over HTTP.

It speaks Images API v2 unless told ``--api v1`` (env ``TANK_API_VERSION``). Verbs are
those of the Glance v1 ``glance`` tool (add, update, delete, index, details, show,
clear, member commands), working on both versions, plus ``download``, ``stores``,
``plugins`` and ``plugin new store NAME`` (a package to start a store from,
:mod:`tank.cli.scaffold`); v2 adds ``stage``, ``import``, ``copy``, ``tag add|remove``,
``member accept|reject``, ``deactivate``, ``reactivate`` and ``info``. Image fields are
``key=value`` arguments (see :mod:`tank.cli.fields`). Every result goes through
:class:`tank.cli.output.Output` (``--json``); every failure is one ``Error:`` line on
stderr and exit status 1 (2 for usage errors).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import attrs
import click

from tank.cli import fields as fieldargs
from tank.cli.inventory import plugin_rows, store_rows
from tank.cli.options import version_option
from tank.cli.output import Output, human_bytes, table
from tank.cli.progress import progress_bar
from tank.cli.refs import IMAGE
from tank.cli.scaffold import plugin_group
from tank.client import (
    DEFAULT_API,
    DEFAULT_URL,
    Client,
    ConnectionFailed,
    ImportFailed,
    Unsupported,
    parse_api,
)
from tank.client.errors import TlsFailed
from tank.client.transfer import known_size
from tank.errors import NotFound, TankError, ValidationError
from tank.model import SORT_KEYS, Image, Status
from tank.plugins import make_plugin_manager
from tank.streams import DEFAULT_CHUNK_SIZE, DataSource


class TankGroup(click.Group):
    """Turns Tank's errors into one ``Error: ...`` line and exit status 1 (with
    ``--json``: one JSON object on stderr), and takes ``--json`` anywhere on the line."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if ctx.parent is None and "--json" in args:
            end = args.index("--") if "--" in args else len(args)
            if "--json" in args[:end]:
                args = ["--json", *(a for a in args[:end] if a != "--json"), *args[end:]]
                ctx.meta["tank.json"] = True  # errors before the callback ran are JSON too
        return super().parse_args(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return self._invoke(ctx)
        except click.ClickException as exc:
            if not ctx.meta.get("tank.json"):
                raise
            kind = "usage" if isinstance(exc, click.UsageError) else "error"
            said: dict[str, Any] = {"kind": kind, "message": exc.format_message()}
            status = getattr(exc, "status", None)
            if status is not None:
                said["status"] = status  # the HTTP status the server answered
            click.echo(json.dumps({"error": said}), err=True)
            ctx.exit(exc.exit_code)

    def _invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except TlsFailed as exc:
            raise click.ClickException(str(exc)) from None
        except ConnectionFailed as exc:
            raise click.ClickException(
                f"{exc}. Is tank-api running there? Start one with "
                "`tank-api --data-dir DIR`, or point --url / TANK_URL at it."
            ) from None
        except Unsupported as exc:
            other = "v2" if exc.api == "v1" else "v1"
            raise click.ClickException(f"{_one_line(str(exc))}; use tank --api {other}") from None
        except TankError as exc:
            failed = click.ClickException(_one_line(str(exc)))
            failed.status = getattr(exc, "status", None)  # type: ignore[attr-defined]
            raise failed from None
        except BrokenPipeError:
            # The reader of our stdout went away (`tank download ID | head`): not an error.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            ctx.exit(1)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            raise click.ClickException(f"{where}{exc.strerror or exc}") from None


@attrs.define
class State:
    """What the global options decided; the client is made on first use."""

    url: str
    api: str
    headers: dict[str, str]
    timeout: float
    output: Output
    progress: bool | None
    _client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = Client(
                self.url, api=self.api, headers=self.headers, timeout=(10.0, self.timeout)
            )
            click.get_current_context().call_on_close(self._client.close)
        return self._client


pass_state = click.make_pass_decorator(State)


def _md5_option(ctx: click.Context | None, param: click.Parameter | None, value: Any) -> Any:
    """An expected MD5 is checked before any data is sent, not after the upload."""
    if value is None:
        return None
    text = str(value).strip().lower()
    if len(text) != 32 or any(c not in "0123456789abcdef" for c in text):
        raise click.BadParameter(
            f"{value!r} is not an MD5 checksum (32 hexadecimal digits)",
            ctx=ctx,
            param=param,
            param_hint="checksum",
        )
    return text


def _api_version(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return parse_api(value)
    except ValidationError:
        raise click.BadParameter(f"{value!r}: expected v2 or v1 (2 and 1 work too)") from None


@click.group(cls=TankGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--url",
    envvar="TANK_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="tank-api base URL (env TANK_URL).",
)
@click.option(
    "--api",
    "api_version",
    envvar="TANK_API_VERSION",
    default=DEFAULT_API,
    show_default=True,
    callback=_api_version,
    metavar="v2|v1",
    help="Images API version to speak (env TANK_API_VERSION), as --os-image-api-version.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON output.")
@click.option(
    "--auth-token", envvar="TANK_AUTH_TOKEN", help="Sent as X-Auth-Token (env TANK_AUTH_TOKEN)."
)
@click.option(
    "-H",
    "--header",
    "raw_headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="Extra request header, e.g. the identity headers of a trusted proxy. Repeatable.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=300.0,
    show_default=True,
    help="Seconds to wait for the server.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bars for transfers [default: when stderr is a terminal].",
)
@version_option
@click.pass_context
def cli(
    ctx: click.Context,
    url: str,
    api_version: str,
    as_json: bool,
    auth_token: str | None,
    raw_headers: tuple[str, ...],
    timeout: float,
    progress: bool | None,
) -> None:
    """Store and fetch virtual-machine images in a Tank (or any Glance API, v2 or v1).

    Image fields are given as FIELD=VALUE, custom properties as property-KEY=VALUE
    (or --property KEY=VALUE):

    \b
        tank add name=cirros disk_format=qcow2 container_format=bare --file cirros.img

        tank index disk_format=qcow2 property-os=linux

        tank download IMAGE_ID -o cirros.img

    Images API v2 is spoken unless --api v1 (env TANK_API_VERSION). v2 also has:

    \b
        tank stage IMAGE_ID disk.img && tank import IMAGE_ID --wait
        tank copy IMAGE_ID --store ceph --wait
        tank tag add IMAGE_ID ubuntu; tank member accept IMAGE_ID MEMBER
    """
    headers = {}
    for raw in raw_headers:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise click.UsageError(f"--header {raw!r} is not of the form 'Name: value'")
        headers[name.strip()] = value.strip()
    if auth_token:
        headers["X-Auth-Token"] = auth_token
    ctx.obj = State(
        url=url,
        api=api_version,
        headers=headers,
        timeout=timeout,
        output=Output(as_json=as_json),
        progress=progress,
    )


# --- images --------------------------------------------------------------------------

_property_option = click.option(
    "--property",
    "properties",
    multiple=True,
    metavar="KEY=VALUE",
    help="A custom property (same as property-KEY=VALUE). Repeatable.",
)


@cli.command()
@click.argument("pairs", nargs=-1, metavar="[FIELD=VALUE]...")
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Image data ('-' for stdin). Default: stdin when it is redirected or piped.",
)
@_property_option
@click.option("--tag", "tags", multiple=True, help="A tag (v2). Repeatable.")
@click.option("--store", help="Store to write the data to (default: the server's default).")
@click.option("--location", help="Register data already in a store instead of uploading.")
@click.option("--size", type=click.IntRange(min=0), help="Expected size, checked by the server.")
@click.option("--checksum", callback=_md5_option, help="Expected MD5, checked by the server.")
@pass_state
def add(
    state: State,
    pairs: tuple[str, ...],
    path: str | None,
    properties: tuple[str, ...],
    tags: tuple[str, ...],
    store: str | None,
    location: str | None,
    size: int | None,
    checksum: str | None,
) -> None:
    """Add an image (upload, --location, or queued).

    FIELD is one of id, name, disk_format, container_format, visibility (public,
    private, shared, community; v1 knows public and shared), is_public, protected,
    os_hidden (v2), owner, min_ram, min_disk (store=, location=, size=, checksum= work
    too, as in Glance). v2, as Glance, takes data only with both formats set. With no
    --file and no --location, data is read from stdin when stdin is a file or pipe
    (`tank add name=x < disk.img`); if that is empty, or stdin is a terminal, the image
    is only registered (queued) and data can follow with `tank update ID --file FILE`.
    """
    meta, extra = fieldargs.image_fields(
        pairs, properties, allowed=fieldargs.ADD_FIELDS, transfer=True
    )
    if tags:
        meta["tags"] = list(tags)
    store = store or extra.get("store")
    location = location or extra.get("location")
    checksum = checksum or _md5_option(None, None, extra.get("checksum"))
    if size is None and "size" in extra:
        size = fieldargs.non_negative("size", extra["size"])
    if location is not None and path is not None:
        raise click.UsageError("give either --file or --location, not both")
    with _open_data(path, implicit=location is None) as (data, known):
        if data is None:
            image = state.client.create(
                store=store, location=location, size=size, checksum=checksum, **meta
            )
        else:
            total = size if size is not None else known
            with progress_bar("Uploading", total, enabled=state.progress) as progress:
                image = state.client.create(
                    data, size=size, checksum=checksum, store=store, progress=progress, **meta
                )
    state.output.image(image, heading=f"Added image {image.id} ({image.status})")


@cli.command()
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.argument("pairs", nargs=-1, metavar="[FIELD=VALUE]...")
@click.option(
    "-f",
    "--file",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Upload data to a queued image ('-' for stdin).",
)
@_property_option
@click.option(
    "--purge-props",
    is_flag=True,
    help="Remove the properties not named here (Glance v1 PUT semantics).",
)
@click.option("--store", help="Store to write the data to (with --file).")
@click.option("--size", type=click.IntRange(min=0), help="Expected size (with --file).")
@click.option("--checksum", callback=_md5_option, help="Expected MD5 (with --file).")
@pass_state
def update(
    state: State,
    image_id: str,
    pairs: tuple[str, ...],
    path: str | None,
    properties: tuple[str, ...],
    purge_props: bool,
    store: str | None,
    size: int | None,
    checksum: str | None,
) -> None:
    """Change metadata, or upload to a queued image.

    Properties given are merged into the existing ones unless --purge-props.
    """
    meta, _ = fieldargs.image_fields(pairs, properties, allowed=fieldargs.UPDATE_FIELDS)
    if path is None:
        if not meta and not purge_props:
            raise click.UsageError("nothing to update: give FIELD=VALUE pairs or --file")
        if store or size is not None or checksum:
            raise click.UsageError("--store, --size and --checksum go with --file")
        image = state.client.update(image_id, purge_props=purge_props, **meta)
        state.output.image(image, heading=f"Updated image {image.id}")
        return
    if purge_props:
        raise click.UsageError("--purge-props cannot be combined with an upload (--file)")
    with _open_data(path, implicit=False) as (data, known):
        assert data is not None
        total = size if size is not None else known
        with progress_bar("Uploading", total, enabled=state.progress) as progress:
            image = state.client.upload(
                image_id, data, size=size, checksum=checksum, store=store, progress=progress, **meta
            )
    state.output.image(image, heading=f"Uploaded data to image {image.id} ({image.status})")


@cli.command()
@click.argument("image_ids", nargs=-1, required=True, metavar="IMAGE...", type=IMAGE)
@click.option(
    "--store",
    help="Delete only the copy of the data in this store; the image stays (v2, admins).",
)
@pass_state
def delete(state: State, image_ids: tuple[str, ...], store: str | None) -> None:
    """Delete images and their data."""
    if store is not None:
        for image_id in image_ids:
            state.client.remove_from_store(image_id, store)
        state.output.emit(
            {"removed_from": store, "images": list(image_ids)},
            "\n".join(f"Deleted the data of image {i} in store {store}" for i in image_ids),
        )
        return
    deleted = []
    for image_id in image_ids:
        try:
            state.client.delete(image_id)
        except (ConnectionFailed, TankError) as exc:
            if len(image_ids) == 1:
                raise
            state.output.warn(f"Error: {image_id}: {_one_line(str(exc))}")
        else:
            deleted.append(image_id)
    state.output.emit({"deleted": deleted}, "\n".join(f"Deleted image {i}" for i in deleted))
    if len(deleted) != len(image_ids):
        raise click.ClickException(f"{len(image_ids) - len(deleted)} image(s) not deleted")


@cli.command()
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@pass_state
def show(state: State, image_id: str) -> None:
    """Show all of an image's metadata (v2: and the stores holding its data)."""
    image = state.client.get(image_id)
    state.output.image(image, stores=_stores(state, image))


def _listing_options(func: Any) -> Any:
    func = click.option(
        "--sort",
        metavar="KEY[:DIR],...",
        help="Several sort keys, e.g. name:asc,size:desc (v2; v1 takes one).",
    )(func)
    func = click.option(
        "--sort-dir", type=click.Choice(["asc", "desc"]), help="Sort direction [desc]."
    )(func)
    func = click.option(
        "--sort-key", type=click.Choice(sorted(SORT_KEYS)), help="Sort by [created_at]."
    )(func)
    func = click.option("--marker", metavar="IMAGE_ID", help="Start after this image.")(func)
    func = click.option(
        "--limit", type=click.IntRange(min=1), help="At most this many images [all]."
    )(func)
    func = click.argument("pairs", nargs=-1, metavar="[FILTER=VALUE]...")(func)
    return func


def _list(state: State, detail: bool, pairs: tuple[str, ...], **page: Any) -> None:
    filters = fieldargs.list_filters(pairs)
    sort = page.pop("sort")
    if sort is not None:
        if page.get("sort_key") or page.get("sort_dir"):
            raise click.UsageError("give either --sort or --sort-key/--sort-dir")
        page["sort"] = fieldargs.sort_pairs(sort)
    # Detailed listings for index too: the brief one (v1's GET /images) has no status.
    images = list(state.client.iter_images(filters=filters, **page))
    state.output.images(images, detail=detail)


@cli.command()
@_listing_options
@pass_state
def index(state: State, pairs: tuple[str, ...], **page: Any) -> None:
    """List images briefly (id, name, formats, size).

    FILTER is one of name, disk_format, container_format, status, size_min, size_max,
    is_public, or property-KEY; v2 adds visibility, member_status, tag (repeatable),
    os_hidden, protected, owner, in: lists (name=in:a,b) and created_at/updated_at
    comparisons (created_at=gte:2026-01-01T00:00:00Z). v2 shows images shared with you
    once accepted (member_status=all for every one). All matching images are listed
    unless --limit.
    """
    _list(state, False, pairs, **page)


@cli.command()
@_listing_options
@pass_state
def details(state: State, pairs: tuple[str, ...], **page: Any) -> None:
    """List images with all their metadata.

    Filters, sorting and paging as for index.
    """
    _list(state, True, pairs, **page)


@cli.command()
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.option(
    "-o",
    "--output",
    "path",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write to this file (default: stdout).",
)
@click.option("--no-verify", is_flag=True, help="Do not check the data against the checksum.")
@pass_state
def download(state: State, image_id: str, path: str | None, no_verify: bool) -> None:
    """Download an image to a file or stdout.

    The data is checked against the image's size, MD5 checksum and multihash
    (os_hash_algo/os_hash_value); with -o FILE a failed download leaves no file behind.
    """
    to_stdout = path in (None, "-")
    stdout = sys.stdout.buffer
    if to_stdout and stdout.isatty():
        raise click.UsageError("refusing to write image data to a terminal: use -o FILE or a pipe")
    image = state.client.get(image_id)
    with progress_bar("Downloading", image.size, enabled=state.progress) as progress:
        if to_stdout:
            state.client.download_to(image_id, stdout, verify=not no_verify, progress=progress)
            stdout.flush()
            return
        assert path is not None
        image = state.client.download_to(image_id, path, verify=not no_verify, progress=progress)
    state.output.emit(
        {"id": image.id, "file": path, "size": image.size, "checksum": image.checksum},
        f"Saved image {image.id} to {path} ({human_bytes(image.size or 0)})",
    )


@cli.command()
@click.option("--force", is_flag=True, help="Really delete every image you own.")
@pass_state
def clear(state: State, force: bool) -> None:
    """Delete all of your images (needs --force).

    Without auth on the server every caller is an admin: that is all images. With
    -H "X-Tenant-Id: T" (auth on), only the images owned by T, not those shared with T.
    """
    if not force:
        raise click.UsageError("clear deletes all of your images; add --force to do it")
    tenant = _tenant(state)
    if tenant is None and any(k.lower() == "x-auth-token" for k in state.headers):
        # Behind Keystone the token says who you are, but not to this command: every
        # image you can see (all of them, for an admin) would count as yours.
        raise click.UsageError(
            'clear with an auth token needs -H "X-Tenant-Id: <your project>" to know '
            "which images are yours"
        )
    images = _every_image(state)
    mine = [i for i in images if tenant is None or i.owner == tenant]
    deleted, failed = [], []
    for image in mine:
        try:
            state.client.delete(image.id)
        except NotFound:
            continue  # deleted meanwhile
        except TankError as exc:
            if isinstance(exc, ConnectionFailed):
                raise
            failed.append(image.id)
            state.output.warn(f"Error: {image.id}: {_one_line(str(exc))}")
        else:
            deleted.append(image.id)
    state.output.emit(
        {"deleted": deleted, "failed": failed},
        f"Deleted {len(deleted)} image(s)",
    )
    if failed:
        raise click.ClickException(f"{len(failed)} image(s) could not be deleted")


# --- members -------------------------------------------------------------------------


@cli.command("image-members")
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@pass_state
def image_members(state: State, image_id: str) -> None:
    """List the tenants an image is shared with."""
    state.output.members(state.client.members(image_id), key="member", api=state.api)


@cli.command("member-images")
@click.argument("member")
@pass_state
def member_images(state: State, member: str) -> None:
    """List the images shared with a tenant (v1)."""
    state.output.members(state.client.shared_images(member), key="image_id")


@cli.command("member-add")
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.argument("member")
@click.option("--can-share", is_flag=True, help="The member may share the image further.")
@pass_state
def member_add(state: State, image_id: str, member: str, can_share: bool) -> None:
    """Share an image with a tenant (or set --can-share, v1).

    On v2 the member sees the image in listings once it accepts (tank member accept).
    """
    added = state.client.add_member(image_id, member, can_share=can_share)
    if added is None:
        state.output.emit(
            {"image_id": image_id, "member": member, "can_share": can_share},
            f"Shared image {image_id} with {member}" + (" (can share)" if can_share else ""),
        )
        return
    state.output.emit(
        {"image_id": added.image_id, "member": added.member, "status": added.status.value},
        f"Shared image {added.image_id} with {added.member} ({added.status})",
    )


@cli.command("member-delete")
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.argument("member")
@pass_state
def member_delete(state: State, image_id: str, member: str) -> None:
    """Stop sharing an image with a tenant."""
    state.client.remove_member(image_id, member)
    state.output.emit(
        {"image_id": image_id, "member": member, "deleted": True},
        f"Image {image_id} is no longer shared with {member}",
    )


@cli.command("members-replace")
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.argument("members", nargs=-1, metavar="[MEMBER]...")
@click.option("--can-share", is_flag=True, help="The members may share the image further.")
@pass_state
def members_replace(state: State, image_id: str, members: tuple[str, ...], can_share: bool) -> None:
    """Replace an image's whole member list.

    With no MEMBER the image is no longer shared with anyone. v2 has no such call:
    members are removed and added one by one (those kept keep their status).
    """
    state.client.replace_members(image_id, [(m, can_share) for m in members])
    state.output.members(state.client.members(image_id), key="member", api=state.api)


@cli.group("member")
def member_group() -> None:
    """A member's answer to an image shared with it (v2)."""


def _answer(status: str) -> Any:
    @click.argument("image_id", metavar="IMAGE", type=IMAGE)
    @click.argument("member", required=False)
    @pass_state
    def command(state: State, image_id: str, member: str | None) -> None:
        member = member or _tenant(state)
        if member is None:
            raise click.UsageError(
                'give MEMBER, or -H "X-Tenant-Id: <your project>" to answer as yourself'
            )
        answered = state.client.set_member_status(image_id, member, status)
        state.output.emit(
            {"image_id": answered.image_id, "member": answered.member, "status": status},
            f"{answered.member} {status} image {answered.image_id}",
        )

    command.__doc__ = (
        f"Mark an image shared with MEMBER as {status} (v2).\n\n"
        "MEMBER defaults to the tenant of -H X-Tenant-Id. Only the member itself (or an "
        "admin) may answer."
    )
    return command


member_group.command("accept")(_answer("accepted"))
member_group.command("reject")(_answer("rejected"))


# --- v2: tags, actions, staging and import -----------------------------------------------


@cli.group("tag")
def tag_group() -> None:
    """Add or remove image tags (v2)."""


@tag_group.command("add")
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.argument("tags", nargs=-1, required=True, metavar="TAG...")
@pass_state
def tag_add(state: State, image_id: str, tags: tuple[str, ...]) -> None:
    """Tag an image."""
    for tag in tags:
        state.client.add_tag(image_id, tag)
    state.output.image(state.client.get(image_id), heading=f"Tagged image {image_id}")


@tag_group.command("remove")
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.argument("tags", nargs=-1, required=True, metavar="TAG...")
@pass_state
def tag_remove(state: State, image_id: str, tags: tuple[str, ...]) -> None:
    """Remove tags from an image."""
    for tag in tags:
        state.client.remove_tag(image_id, tag)
    state.output.image(state.client.get(image_id), heading=f"Untagged image {image_id}")


@cli.command()
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@pass_state
def deactivate(state: State, image_id: str) -> None:
    """Keep an image's data but refuse it to everyone but admins (v2)."""
    state.client.deactivate(image_id)
    state.output.image(state.client.get(image_id), heading=f"Deactivated image {image_id}")


@cli.command()
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@pass_state
def reactivate(state: State, image_id: str) -> None:
    """Make a deactivated image downloadable again (v2)."""
    state.client.reactivate(image_id)
    state.output.image(state.client.get(image_id), heading=f"Reactivated image {image_id}")


@cli.command()
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.argument("path", metavar="FILE", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--size", type=click.IntRange(min=0), help="Expected size, checked.")
@click.option(
    "--checksum", callback=_md5_option, help="Expected MD5, checked before the last byte is sent."
)
@pass_state
def stage(state: State, image_id: str, path: str, size: int | None, checksum: str | None) -> None:
    """Upload FILE ('-' for stdin) to the staging area, for `tank import` (v2).

    The image becomes 'uploading'; its data is usable once imported
    (tank import IMAGE_ID --method glance-direct).
    """
    with _open_data(path, implicit=False) as (data, known):
        assert data is not None
        total = size if size is not None else known
        with progress_bar("Staging", total, enabled=state.progress) as progress:
            image = state.client.stage(
                image_id, data, size=size, checksum=checksum, progress=progress
            )
    state.output.image(image, heading=f"Staged data for image {image.id} ({image.status})")


def _import_options(func: Any) -> Any:
    func = click.option(
        "--wait-timeout",
        type=click.FloatRange(min=0.1),
        default=3600.0,
        show_default=True,
        help="Seconds --wait waits.",
    )(func)
    func = click.option(
        "--wait/--no-wait",
        default=False,
        help="Wait for the import to end; exit status 1 if it failed. [default: no-wait]",
    )(func)
    func = click.option(
        "--allow-failure",
        is_flag=True,
        help="Succeed if at least one store got the data (all_stores_must_succeed=false).",
    )(func)
    func = click.option("--all-stores", is_flag=True, help="Into every writable store.")(func)
    func = click.option(
        "--store", "stores", multiple=True, help="Store to import into. Repeatable."
    )(func)
    return func


@cli.command("import")
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@click.option(
    "--method",
    type=click.Choice(["glance-direct", "web-download"]),
    default="glance-direct",
    show_default=True,
    help="glance-direct: the staged data (tank stage); web-download: fetch --uri.",
)
@click.option("--uri", help="Where web-download fetches the data from (http or https).")
@_import_options
@pass_state
def import_(
    state: State,
    image_id: str,
    method: str,
    uri: str | None,
    stores: tuple[str, ...],
    all_stores: bool,
    allow_failure: bool,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Import data into an image (v2 interoperable import).

    \b
        tank stage IMAGE_ID disk.qcow2 && tank import IMAGE_ID --wait
        tank import IMAGE_ID --method web-download --uri https://example.org/disk.img

    The server imports in the background: without --wait this returns at once.
    """
    if (uri is None) == (method == "web-download"):
        raise click.UsageError("--uri goes with --method web-download, and it needs one")
    _import(state, image_id, method, uri, stores, all_stores, allow_failure, wait, wait_timeout)


@cli.command()
@click.argument("image_id", metavar="IMAGE", type=IMAGE)
@_import_options
@pass_state
def copy(
    state: State,
    image_id: str,
    stores: tuple[str, ...],
    all_stores: bool,
    allow_failure: bool,
    wait: bool,
    wait_timeout: float,
) -> None:
    """Copy an active image's data into more stores (v2 copy-image import)."""
    if not stores and not all_stores:
        raise click.UsageError("copy needs --store NAME (repeatable) or --all-stores")
    _import(
        state, image_id, "copy-image", None, stores, all_stores, allow_failure, wait, wait_timeout
    )


def _import(
    state: State,
    image_id: str,
    method: str,
    uri: str | None,
    stores: tuple[str, ...],
    all_stores: bool,
    allow_failure: bool,
    wait: bool,
    wait_timeout: float,
) -> None:
    image = state.client.import_image(
        image_id,
        method,
        uri=uri,
        stores=list(stores) or None,
        all_stores=all_stores,
        all_stores_must_succeed=False if allow_failure else None,
    )
    if not wait:
        state.output.image(image, heading=f"Importing image {image.id} ({method})")
        return
    try:
        image = state.client.wait_for_import(
            image.id, stores=() if allow_failure else stores, timeout=wait_timeout
        )
    except ImportFailed as exc:
        raise click.ClickException(_one_line(str(exc))) from None
    failed = image.properties.get("os_glance_failed_import")
    if failed:
        state.output.warn(f"Warning: image {image.id} could not be imported into: {failed}")
    state.output.image(
        image, heading=f"Imported image {image.id} ({method})", stores=_stores(state, image)
    )


@cli.command()
@pass_state
def info(state: State) -> None:
    """What the server offers: its import methods and stores (v2 discovery)."""
    methods = state.client.import_methods()
    stores = state.client.stores_info()
    state.output.emit(
        {"import_methods": methods, "stores": [s.to_dict() for s in stores]},
        lambda: (
            "Import methods: "
            + (", ".join(methods) or "none")
            + "\n\n"
            + table(
                ["Store", "Default", "Read-only", "Description"],
                [
                    [s.id, "yes" if s.default else "", "yes" if s.read_only else "", s.description]
                    for s in stores
                ],
            )
        ),
    )


# --- what is installed ---------------------------------------------------------------


@cli.command()
@pass_state
def stores(state: State) -> None:
    """List installed store types (no server needed)."""
    rows = store_rows(make_plugin_manager())
    state.output.emit(
        rows,
        lambda: table(
            ["Type", "Schemes", "Capabilities", "Plugin", "Distribution"],
            [
                [
                    r["type"],
                    ",".join(r["schemes"]),
                    ",".join(r["capabilities"]),
                    r["plugin"] or "",
                    f"{r['distribution']} {r['version']}" if r["distribution"] else "",
                ]
                for r in rows
            ],
        ),
    )


@cli.command()
@pass_state
def plugins(state: State) -> None:
    """List installed plugins and their hooks.

    Needs no server.
    """
    rows = plugin_rows(make_plugin_manager())
    state.output.emit(
        rows,
        lambda: table(
            ["Plugin", "Distribution", "Hooks"],
            [
                [
                    r["name"],
                    f"{r['distribution']} {r['version']}" if r["distribution"] else "",
                    ",".join(r["hooks"]),
                ]
                for r in rows
            ],
        ),
    )


cli.add_command(plugin_group)


# --- helpers -------------------------------------------------------------------------


@contextlib.contextmanager
def _open_data(
    path: str | None, *, implicit: bool
) -> Iterator[tuple[DataSource | None, int | None]]:
    """The data for an upload and its size if known; ``(None, None)`` when there is none.

    ``implicit``: without ``path``, read stdin if it is a file or pipe that has data.
    """
    if path is not None and path != "-":
        try:
            file = open(Path(path), "rb")
        except OSError as exc:
            raise click.ClickException(f"cannot read {path}: {exc.strerror}") from None
        with file:
            yield file, known_size(file)
        return
    stdin = sys.stdin.buffer
    if path == "-":
        yield stdin, known_size(stdin)
        return
    if not implicit or _is_terminal(stdin):
        yield None, None
        return
    size = known_size(stdin)
    if size is not None:
        yield (stdin, size) if size > 0 else (None, None)
        return
    first = stdin.read(DEFAULT_CHUNK_SIZE)
    yield (_chain(first, stdin), None) if first else (None, None)


def _chain(first: bytes, rest: IO[bytes]) -> Iterator[bytes]:
    return itertools.chain([first], iter(lambda: rest.read(DEFAULT_CHUNK_SIZE), b""))


def _is_terminal(stream: IO[bytes]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _stores(state: State, image: Image) -> tuple[str, ...] | None:
    """Where the image's data is (v2 shows every reader; None on v1, which does not)."""
    if state.api != "v2" or image.status not in (Status.ACTIVE, Status.DEACTIVATED):
        return None
    return state.client.image_stores(image.id)


def _tenant(state: State) -> str | None:
    """The tenant named by -H X-Tenant-Id (or X-Project-Id), if any."""
    return next(
        (v for k, v in state.headers.items() if k.lower() in ("x-tenant-id", "x-project-id")),
        None,
    )


def _every_image(state: State) -> list[Image]:
    """Every image the caller may see: v1 public and private alike; v2 every visibility
    and member status, hidden images too (v2 lists them only when asked)."""
    if state.api == "v1":
        return list(state.client.iter_images(filters={"is_public": None}))
    seen: dict[str, Image] = {}
    for hidden in (False, True):
        filters = {"visibility": "all", "member_status": "all", "os_hidden": hidden}
        for image in state.client.iter_images(filters=filters):
            seen[image.id] = image
    return list(seen.values())
