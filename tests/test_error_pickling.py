"""Every sarvam_async error survives pickle: type, message and attributes, also across processes.

A class is found by introspection (``errors.__all__`` and every ``SarvamError`` subclass the
package defines), so a new one is covered without editing this file; a new *constructor*
needs a row in ``CONSTRUCTOR_ARGS``, and the test fails saying so until it has one.
"""

from __future__ import annotations

import multiprocessing
import pickle
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import pytest

import sarvam_async
from sarvam_async import errors
from sarvam_async.models import JobState, JobStatusResponse, StorageContainerType

SECRET = "s3cr3t-signature-0123456789"
_UNSET = object()

_STATUS = JobStatusResponse(
    job_id="job-123",
    job_state=JobState.RUNNING,
    storage_container_type=StorageContainerType.AZURE,
    total_files=3,
    successful_files_count=1,
)

_API_STATUS_KWARGS: dict[str, Any] = {
    "status_code": 418,
    "code": "some_code",
    "request_id": "20250101_0123abcd",
    "body": '{"error": {"message": "went wrong", "code": "some_code"}}',
    "headers": {"x-request-id": "20250101_0123abcd", "retry-after": "2.5"},
    "retry_after": 2.5,
    "method": "POST",
    "path": "/speech-to-text/job/v1/download-files",
    "attempts": 3,
}

CONSTRUCTOR_ARGS: dict[type[errors.SarvamError], tuple[tuple[Any, ...], dict[str, Any]]] = {
    errors.SarvamError: (("something failed; do this next",), {}),
    errors.InvalidParameterError: (("job_parameters.keyterms", "at most 50 keyterms"), {}),
    errors.APIError: (
        ("the answer was cut short",),
        {"method": "GET", "path": "/speech-to-text/job/v1/{job_id}/status", "attempts": 2},
    ),
    errors.APIStatusError: (("went wrong",), _API_STATUS_KWARGS),
    errors.TooManyRequestsError: (
        ("no credits",),
        {**_API_STATUS_KWARGS, "status_code": 429, "code": "insufficient_quota_error"},
    ),
    errors.APIConnectionError: (
        ("connection refused",),
        {"request_sent": False, "method": "POST", "path": "/speech-to-text/job/v1", "attempts": 4},
    ),
    errors.ResponseValidationError: (
        ("expected `str`, got `int`",),
        {
            "json_path": "$.job_details[3].state",
            "status_code": 200,
            "request_id": "20250101_0123abcd",
            "body": '{"job_details": [1, 2, 3, {"state": 7}]}',
            "method": "GET",
            "path": "/speech-to-text/job/v1/{job_id}/status",
            "attempts": 1,
        },
    ),
    errors.StorageError: (
        ("upload refused (HTTP 403)",),
        {"file_name": "a.wav", "status_code": 403},
    ),
    errors.UnsafeFileNameError: (("../../etc/passwd.json", "it leaves the output folder"), {}),
    errors.CallbackError: (("the body is not JSON",), {}),
    errors.CallbackPayloadError: (("expected `str`, got `null`",), {"json_path": "$.job_id"}),
    errors.JobError: (("the job could not be started",), {"job_id": "job-123"}),
    errors.FileFailedError: (
        ("unsupported audio codec",),
        {"file_name": "a.wav", "job_id": "job-123", "state": "Failed"},
    ),
    errors.JobTimeoutError: (
        ("still Running after 600s",),
        {"job_id": "job-123", "last_status": _STATUS},
    ),
    errors.OutputsNotReadyError: (
        ("not in COMPLETED state",),
        {"job_id": "job-123", "state": "Running", "waited": 12.5},
    ),
}
"""Representative constructor arguments, looked up along each class's MRO.

A row serves its class and every subclass that keeps its constructor. Use values that differ
from the defaults, so an attribute lost in a round trip shows.
"""


def _project_classes() -> list[type[errors.SarvamError]]:
    """Every error class ``sarvam_async.errors`` exports or the package defines, by name."""
    found: set[type[errors.SarvamError]] = set()
    for name in errors.__all__:
        value = getattr(errors, name)
        if isinstance(value, type) and issubclass(value, errors.SarvamError):
            found.add(value)
    pending: list[type[errors.SarvamError]] = [errors.SarvamError]
    while pending:
        cls = pending.pop()
        if cls.__module__.split(".")[0] == sarvam_async.__name__:
            found.add(cls)
        pending.extend(cls.__subclasses__())
    return sorted(found, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def _constructor_owner(cls: type[errors.SarvamError]) -> type[errors.SarvamError]:
    """The class of ``cls``'s MRO whose ``__init__`` it runs (``SarvamError`` for builtins)."""
    for klass in cls.__mro__:
        if klass is errors.SarvamError:
            break
        if issubclass(klass, errors.SarvamError) and "__init__" in vars(klass):
            return klass
    return errors.SarvamError


def build(cls: type[errors.SarvamError]) -> errors.SarvamError:
    """An instance of ``cls`` from its ``CONSTRUCTOR_ARGS`` row; fails if it has none."""
    owner = _constructor_owner(cls)
    row = next((klass for klass in cls.__mro__ if klass in CONSTRUCTOR_ARGS), None)
    if row is None or not issubclass(row, owner):
        pytest.fail(
            f"{cls.__qualname__} is built by {owner.__qualname__}.__init__, which has no row in "
            f"CONSTRUCTOR_ARGS: add one with representative arguments"
        )
    args, kwargs = CONSTRUCTOR_ARGS[row]
    error = cls(*args, **kwargs)
    for name in kwargs:
        assert hasattr(error, name), f"{cls.__qualname__} does not keep {name!r}"
    return error


def public_state(error: BaseException) -> dict[str, Any]:
    """Every public non-method attribute of ``error``, properties and class values included."""
    names = (name for name in dir(error) if not name.startswith("_"))
    # an unset OSError slot (JobTimeoutError's ``characters_written``) raises: keep it unset
    values = {name: getattr(error, name, _UNSET) for name in names}
    return {name: value for name, value in values.items() if not callable(value)}


def assert_same_error(copy: BaseException, original: BaseException) -> None:
    """``copy`` is ``original``'s exact type, with its args, ``str()`` and attributes."""
    assert type(copy) is type(original)
    assert copy.args == original.args
    assert str(copy) == str(original)
    assert repr(copy) == repr(original)
    assert vars(copy) == vars(original)
    assert public_state(copy) == public_state(original)


def test_the_table_covers_every_class() -> None:
    classes = _project_classes()
    assert set(classes) >= {getattr(errors, name) for name in errors.__all__}
    assert len(classes) > len(CONSTRUCTOR_ARGS)  # subclasses without a constructor reuse rows
    for cls in classes:
        build(cls)


@pytest.mark.parametrize("cls", _project_classes(), ids=lambda cls: cls.__qualname__)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_round_trip(cls: type[errors.SarvamError], protocol: int) -> None:
    original = build(cls)
    copy = pickle.loads(pickle.dumps(original, protocol=protocol))
    assert_same_error(copy, original)


def test_attributes_set_after_construction_survive() -> None:
    error = errors.ServiceUnavailableError("overloaded", status_code=503)
    error.attempts = 7  # what the retry loop does once it gives up
    copy = pickle.loads(pickle.dumps(error))
    assert copy.attempts == 7
    assert "after 7 attempts" in str(copy)


def test_the_cause_is_dropped_and_the_error_kept() -> None:
    with pytest.raises(errors.LocalWriteError) as info:
        try:
            raise OSError("disk full")
        except OSError as exc:
            raise errors.LocalWriteError("no space left", file_name="a.json") from exc
    assert info.value.__cause__ is not None
    copy = pickle.loads(pickle.dumps(info.value))
    assert_same_error(copy, info.value)
    assert copy.__cause__ is None


@pytest.mark.parametrize(
    "error",
    [
        errors.StorageError(
            f"PUT https://acct.blob.core.windows.net/c/a.wav?sig={SECRET}", file_name="a.wav"
        ),
        errors.APIStatusError(
            f"see https://x/y?sig={SECRET}",
            status_code=400,
            body=f'{{"url": "//h/p?sig={SECRET}"}}',
        ),
        errors.JobError(f"callback token={SECRET} refused", job_id="job-123"),
    ],
    ids=["storage", "status", "job"],
)
def test_no_secret_in_the_pickle(error: errors.SarvamError) -> None:
    data = pickle.dumps(error)
    assert SECRET.encode() not in data
    assert_same_error(pickle.loads(data), error)


def worker_error() -> errors.TooManyRequestsError:
    """The error the pool worker raises; the parent builds the same one to compare."""
    error = errors.TooManyRequestsError(
        "rate limited",
        status_code=429,
        code="rate_limit_exceeded_error",
        request_id="20250101_0123abcd",
        retry_after=1.5,
        method="POST",
        path="/speech-to-text/job/v1",
    )
    error.attempts = 5
    return error


def raise_worker_error() -> None:
    """Run in the pool worker: raise :func:`worker_error`."""
    raise worker_error()


def test_an_error_crosses_a_process_pool() -> None:
    # spawn: no fork of a multi-threaded test process, and the worker imports this module,
    # as a user's shard would.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(raise_worker_error)
        with pytest.raises(errors.TooManyRequestsError) as info:
            future.result(timeout=30)
    assert_same_error(info.value, worker_error())
    assert info.value.retry_after == 1.5
    assert info.value.attempts == 5
