"""Docker's JSON errors: the one place they are made (ARCHITECTURE style rule 3; docker-py `docker/errors.py` on the
other side of the wire).

A `VicError` becomes `{"message": "<text>"}` with Content-Type `application/json` and the status Docker gives that
kind of error (moby `httpstatus.FromError`): not found 404, invalid argument 400, conflict 409, unauthorized 401,
forbidden 403, unavailable 503, not implemented 501, anything else 500. The docker CLI prints
`Error response from daemon: <message>` whatever the status; docker-py raises NotFound / ImageNotFound for a 404 and
APIError for the rest.
"""
from __future__ import annotations

import json

from aiohttp import web

from .. import errors

JSON = "application/json"

# Most specific first: the first isinstance match wins.
_STATUS: tuple[tuple[type[errors.VicError], int], ...] = (
    (errors.NotFound, 404),
    (errors.InvalidArgument, 400),
    (errors.Conflict, 409),  # AlreadyExists, ConcurrentModification, Busy, InUse
    (errors.InvalidState, 409),
    (errors.AuthenticationFailed, 401),
    (errors.PermissionDenied, 403),
    (errors.Unavailable, 503),
    (errors.NotSupported, 501),
)


class DockerError(errors.VicError):
    """An error the personality itself raises with an explicit HTTP status (a bad request parameter, say)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def status_of(err: BaseException) -> int:
    if isinstance(err, DockerError):
        return err.status
    for kind, status in _STATUS:
        if isinstance(err, kind):
            return status
    return 500


def message_of(err: BaseException) -> str:
    if isinstance(err, errors.VicError):
        return err.message
    return str(err) or type(err).__name__


def json_error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """`{"message": ...}` with Docker's status and content type."""
    return web.Response(status=status, body=json.dumps({"message": message}).encode() + b"\n", content_type=JSON,
                        headers=headers)


def error_response(err: BaseException, *, prefix: str = "") -> web.Response:
    """The response for an error; `prefix` is Docker's context for some routes (`cannot kill container: web: `)."""
    return json_error(status_of(err), prefix + message_of(err))


def wrapped(err: errors.VicError, prefix: str) -> DockerError:
    """The same error with Docker's context before its message, keeping its status."""
    return DockerError(status_of(err), prefix + message_of(err))


def bad_request(message: str) -> DockerError:
    return DockerError(400, message)


def not_found(message: str) -> DockerError:
    return DockerError(404, message)


def not_implemented(message: str) -> DockerError:
    return DockerError(501, message)


def wait_error(err: BaseException | None) -> dict | None:
    """The `Error` member of a wait response body (its headers went out before the wait ended)."""
    if err is None:
        return None
    return {"Message": message_of(err)}


PAGE_NOT_FOUND = "page not found"

__all__ = ["DockerError", "status_of", "message_of", "json_error", "error_response", "wrapped", "bad_request",
           "not_found", "not_implemented", "wait_error", "PAGE_NOT_FOUND", "JSON"]
