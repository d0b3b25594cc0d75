"""Talking to S3: the botocore client a store shares, and turning its errors into Tank's.

botocore is imported here, inside functions, so that ``tank_store_s3.plugin`` (and with it
``tank stores``) loads without it. One client per store object: botocore clients are
thread-safe and own the connection pool that concurrent uploads and part threads share.
The client comes from botocore itself, not boto3: boto3 adds resources and s3transfer
(65 modules, ~3 MiB per process) that the store never uses.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tank import errors

if TYPE_CHECKING:
    from tank_store_s3.backend import S3Backend

log = logging.getLogger(__name__)

#: The server rejected who we are: wrong access key, wrong secret, expired token.
AUTH_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "InvalidToken",
        "ExpiredToken",
        "InvalidSecurity",
        "AuthorizationHeaderMalformed",
        "TokenRefreshRequired",
    }
)
NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NoSuchUpload", "NotFound", "404"})
FULL_CODES = frozenset({"QuotaExceeded", "EntityTooLarge", "InsufficientStorage", "507"})
DUPLICATE_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})
BUSY_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "RequestTimeout", "Throttling", "RequestTimeTooSkewed"}
)


def import_botocore_session() -> Any:
    try:
        import botocore.session
    except ImportError as exc:
        raise errors.BadStoreConfig(
            f"the s3 store needs botocore, which is not importable ({exc}): pip install botocore"
        ) from None
    return botocore.session


@functools.cache
def library_errors() -> tuple[type[BaseException], ...]:
    """The exceptions botocore raises, for ``except library_errors() as exc:``."""
    from botocore.exceptions import BotoCoreError, ClientError

    return (BotoCoreError, ClientError)


def make_client(config: Any) -> Any:
    """A botocore S3 client for a store's ``Config``: no network I/O happens here.

    Retries: botocore's "standard" mode (exponential backoff with jitter) for
    throttling, 5xx and connection errors, ``max_attempts`` tries in all; with the
    short ``connect_timeout`` an unreachable endpoint fails in seconds. Checksums:
    only where S3 requires them ("when_required"), as S3-compatible servers vary and
    Tank hashes every byte itself. Payload signing: bodies go as ``UNSIGNED-PAYLOAD``
    over HTTPS, where TLS already protects them (a signed payload costs a SHA-256 pass
    over every byte, ~0.6 CPU s/GiB, on both Tank and the server), and signed over plain
    HTTP, where the signature is their only protection on the wire.
    """
    sessions = import_botocore_session()
    from botocore.config import Config

    region = config.region or ("us-east-1" if config.endpoint else None)
    tls = (config.endpoint or "https://").lower().startswith("https://")  # AWS: https
    client_config = Config(
        region_name=region,
        signature_version="s3v4",
        s3={"addressing_style": config.addressing_style, "payload_signing_enabled": not tls},
        retries={"mode": "standard", "max_attempts": config.max_attempts},
        connect_timeout=config.connect_timeout,
        read_timeout=config.read_timeout,
        # Every concurrent upload may hold thread_pools connections at once.
        max_pool_connections=max(10, 4 * config.thread_pools),
        tcp_keepalive=True,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        user_agent_extra="tank-store-s3",
    )
    verify: bool | str = config.ca_bundle or config.verify_tls
    return sessions.Session().create_client(
        "s3",
        endpoint_url=config.endpoint,
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        verify=verify,
        config=client_config,
    )


def error_code(exc: BaseException) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a botocore ClientError; ("", 0) otherwise."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", 0
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def translate(
    exc: BaseException,
    store: S3Backend,
    doing: str,
    where: str,
    *,
    not_found: type[errors.TankError] = errors.NotFound,
) -> errors.TankError:
    """The Tank error for a botocore exception raised while ``doing`` at ``where``.

    ``where`` is a redacted location or bucket name. Messages never contain the
    secret key: the library's own text is scrubbed of it as well.
    """
    if isinstance(exc, errors.TankError):
        return exc
    from botocore import exceptions as bx

    name = store.name
    endpoint = store.endpoint_label
    secrets = [store.config.secret_key]
    prefix = f"store {name!r}: {doing} {where}"
    if isinstance(exc, bx.ClientError):
        code, status = error_code(exc)
        detail = _scrub(f"{code or status}", secrets)
        if code in NOT_FOUND_CODES or status == 404:
            return not_found(f"{prefix}: not found at {endpoint} ({detail})", store=name)
        if code in FULL_CODES or status in (413, 507):
            return errors.StorageFull(f"{prefix}: {endpoint} is full ({detail})", store=name)
        if code in AUTH_CODES:
            return errors.Forbidden(
                f"{prefix}: {endpoint} rejected the store's credentials ({detail}): "
                f"check access_key/secret_key in [stores.{name}]",
                store=name,
            )
        if status == 403 or code == "AccessDenied":
            return errors.Forbidden(
                f"{prefix}: {endpoint} refused access ({detail}): check access_key/"
                f"secret_key in [stores.{name}] and the bucket's permissions",
                store=name,
            )
        if code in DUPLICATE_CODES or status == 412:
            return errors.Duplicate(f"{prefix}: data already exists there ({detail})", store=name)
        if code in BUSY_CODES or status >= 500:
            return errors.StoreUnavailable(
                f"{prefix}: {endpoint} failed ({detail}) after {store.config.max_attempts} "
                "attempts",
                store=name,
            )
        message = _scrub(str(exc), secrets)
        return errors.StoreError(f"{prefix}: {message}", store=name)
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return errors.Forbidden(
            f"{prefix}: no S3 credentials: set access_key and secret_key in [stores.{name}] "
            "(or configure botocore's credential chain)",
            store=name,
        )
    if isinstance(exc, bx.SSLError):
        return errors.StoreUnavailable(
            f"{prefix}: TLS with {endpoint} failed: check verify_tls/ca_bundle "
            f"in [stores.{name}] ({_scrub(str(exc), secrets)})",
            store=name,
        )
    broken = (bx.ConnectionError, bx.HTTPClientError, bx.IncompleteReadError)
    if isinstance(exc, (*broken, bx.ResponseStreamingError)):
        return errors.StoreUnavailable(
            f"{prefix}: {endpoint} is unreachable or timed out "
            f"({type(exc).__name__}: {_scrub(str(exc), secrets)})",
            store=name,
        )
    if isinstance(exc, bx.ParamValidationError):
        return errors.BadLocation(f"{prefix}: {_scrub(str(exc), secrets)}", store=name)
    return errors.StoreError(
        f"{prefix}: {type(exc).__name__}: {_scrub(str(exc), secrets)}", store=name
    )


def is_no_such_bucket(exc: BaseException | None) -> bool:
    return exc is not None and error_code(exc)[0] == "NoSuchBucket"


def _scrub(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
