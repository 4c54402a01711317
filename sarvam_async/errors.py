"""Every failure sarvam_async can raise, as one tree.

::

    SarvamError                      base of everything below
    ├── ConfigurationError           no API key, bad base URL, bad option value
    ├── InvalidParameterError        a request field breaks a documented limit (also ValueError)
    ├── ClientClosedError            the client was used after ``aclose()``
    ├── EventLoopError               the client is busy on another event loop (a thread)
    ├── APIError                     anything that went wrong talking to the API
    │   ├── APIStatusError           the API answered non-2xx (unmapped 4xx land here)
    │   │   ├── BadRequestError              400
    │   │   ├── UnauthorizedError            401
    │   │   ├── ForbiddenError               403 (bad or missing API key)
    │   │   ├── NotFoundError                404 (unknown job id)
    │   │   ├── MethodNotAllowedError        405
    │   │   ├── ConflictError                409
    │   │   ├── ContentTooLargeError         413
    │   │   ├── UnprocessableEntityError     422
    │   │   ├── TooManyRequestsError         429 (``retry_after``, ``quota_exhausted``)
    │   │   └── InternalServerError          500 and every unmapped 5xx
    │   │       ├── BadGatewayError          502
    │   │       ├── ServiceUnavailableError  503
    │   │       └── GatewayTimeoutError      504
    │   ├── APIConnectionError       no usable answer: refused, reset, dropped
    │   │   └── APITimeoutError      the attempt ran out of time
    │   └── ResponseValidationError  a 2xx body that does not decode (keeps the JSON path)
    │       └── ResponseTooLargeError    a 2xx body over ``max_response_bytes``
    ├── StorageError                 a presigned-URL upload or download failed (names the file)
    │   └── LocalWriteError          the local disk refused the output (full, read-only)
    ├── UnsafeFileNameError          an output name would leave the folder or cannot be saved
    ├── CallbackError                a callback request was refused (``status_code`` to answer)
    │   ├── CallbackUnauthorizedError    401: no token header
    │   ├── CallbackForbiddenError       403: a token that is not this receiver's
    │   ├── CallbackTooLargeError        413: a body over the receiver's size cap
    │   └── CallbackPayloadError         400: a body that is not the callback payload
    └── JobError                     a batch job could not be driven to its end
        ├── FileFailedError          the API did not transcribe one file (``file_name``, ``state``)
        ├── JobTimeoutError          waiting ran past its deadline (``last_status``)
        ├── OutputsNotReadyError     download-files still says "not yet" (``state``, ``waited``)
        └── ManifestError            a resume manifest is unreadable or belongs to other inputs

Every message says what to do next. None contains the API key, a presigned URL's query
string or a callback token: all are credentials.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._redact import redact

if TYPE_CHECKING:
    from .models import JobStatusResponse

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "BadGatewayError",
    "BadRequestError",
    "CallbackError",
    "CallbackForbiddenError",
    "CallbackPayloadError",
    "CallbackTooLargeError",
    "CallbackUnauthorizedError",
    "ClientClosedError",
    "ConfigurationError",
    "ConflictError",
    "ContentTooLargeError",
    "EventLoopError",
    "FileFailedError",
    "ForbiddenError",
    "GatewayTimeoutError",
    "InternalServerError",
    "InvalidParameterError",
    "JobError",
    "JobTimeoutError",
    "LocalWriteError",
    "ManifestError",
    "MethodNotAllowedError",
    "NotFoundError",
    "OutputsNotReadyError",
    "ResponseTooLargeError",
    "ResponseValidationError",
    "SarvamError",
    "ServiceUnavailableError",
    "StorageError",
    "TooManyRequestsError",
    "UnauthorizedError",
    "UnprocessableEntityError",
    "UnsafeFileNameError",
]


class SarvamError(Exception):
    """Base class of every exception raised by sarvam_async.

    Every subclass pickles as itself, with its ``args``, ``str()`` and attributes intact, so
    an error raised in a process pool or a distributed worker reaches the caller typed.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as the class, its ``args`` and its attributes, without calling ``__init__``.

        ``Exception`` unpickles by calling ``cls(*args)``, which fails for a constructor with
        other required arguments (``status_code=``, ``file_name=``) and would prefix a stored
        message again (``"field: field: ..."``). Restoring the stored state instead covers
        every subclass, present and future, with no per-class code: attributes set after
        construction (``attempts``) survive, nothing is redacted twice, and nothing is
        pickled that the exception does not already hold. A subclass must keep its state in
        ``args`` and plain instance attributes (no ``__slots__``). As for any exception, the
        traceback and ``__cause__`` are dropped.
        """
        return (_unpickle, (type(self), self.args), self.__dict__ or None)


def _unpickle(cls: type[SarvamError], args: tuple[Any, ...]) -> SarvamError:
    """An instance of ``cls`` holding ``args``, its ``__init__`` not run (pickle's half).

    Pickle then restores the instance's attributes. Module-level, so pickles name it.
    """
    if not (isinstance(cls, type) and issubclass(cls, SarvamError)):
        raise TypeError("not a sarvam_async error")  # only reached by a forged pickle
    error = cls.__new__(cls)
    error.args = args  # set, not passed: OSError subclasses ignore __new__ arguments
    return error


class ConfigurationError(SarvamError):
    """The client was configured in a way that cannot work (for example no API key)."""


class InvalidParameterError(SarvamError, ValueError):
    """A request field breaks a limit the API documents; raised before anything is sent.

    ``field`` names the offending field (``"job_parameters.keyterms"``, ``"files"``).
    """

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ClientClosedError(SarvamError, RuntimeError):
    """The client was used after ``aclose()``; create a new ``AsyncSarvam``."""


class EventLoopError(SarvamError, RuntimeError):
    """The client was used on one event loop while calls were in flight on another.

    A client follows its caller from one finished loop to the next (``asyncio.run`` twice),
    but cannot serve two loops at once: create one client per thread.
    """


class APIError(SarvamError):
    """Anything that went wrong talking to the API.

    ``method`` and ``path`` name the endpoint (the path template, never a URL with secrets);
    ``attempts`` is how many attempts were made before giving up.
    """

    def __init__(self, message: str, *, method: str = "", path: str = "", attempts: int = 1):
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.attempts = attempts

    def __str__(self) -> str:
        where = f"{self.method} {self.path}: " if self.method else ""
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{where}{self.message}{tries}"


class APIStatusError(APIError):
    """The API answered with a non-2xx status.

    Attributes: ``status_code``, ``code`` (the envelope's ``error.code``, or ``None``),
    ``message``, ``request_id`` (quote it to support), ``body`` (the raw text, truncated),
    ``headers``, ``retry_after`` (seconds the server asked to wait, if it said) and
    ``attempts``.
    """

    hint = "See the message; quote the request id to Sarvam support if it persists."

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        code: str | None = None,
        request_id: str | None = None,
        body: str = "",
        headers: dict[str, str] | None = None,
        retry_after: float | None = None,
        method: str = "",
        path: str = "",
        attempts: int = 1,
    ) -> None:
        super().__init__(message, method=method, path=path, attempts=attempts)
        self.retry_after = retry_after
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        self.body = redact(body)
        self.headers = headers or {}

    @property
    def quota_exhausted(self) -> bool:
        """True when the account is out of credits (``insufficient_quota_error``).

        The one place that code is recognised: such an error is never retried, stops a
        fan-out, and tells the rate limiter nothing about pace.
        """
        return self.code == "insufficient_quota_error"

    def __str__(self) -> str:
        where = f"{self.method} {self.path} -> " if self.method else ""
        code = f" {self.code}" if self.code else ""
        rid = f" [request_id={self.request_id}]" if self.request_id else ""
        tries = f" after {self.attempts} attempts" if self.attempts > 1 else ""
        text = f"{where}HTTP {self.status_code}{code}: {self.message}{rid}{tries}. {self.hint}"
        if self.retry_after is not None:
            text += f" The server asked to wait {self.retry_after:g}s."
        return text


class BadRequestError(APIStatusError):
    """400: the API rejected the request's content."""

    hint = "Fix the request parameters named in the message."


class UnauthorizedError(APIStatusError):
    """401: the request carried no usable credentials."""

    hint = "Pass api_key= or set SARVAM_API_KEY."


class ForbiddenError(APIStatusError):
    """403: the API key is missing, wrong or not allowed to do this."""

    hint = "Check the key passed as api_key= or in SARVAM_API_KEY."


class NotFoundError(APIStatusError):
    """404: the job (or path) does not exist."""

    hint = "Check the job id; jobs belong to the account that created them."


class MethodNotAllowedError(APIStatusError):
    """405: the endpoint does not accept this method (download-files is POST only)."""

    hint = "This is a client bug or a wrong base_url; please report it."


class ConflictError(APIStatusError):
    """409: the request conflicts with the job's current state."""

    hint = "Fetch the job status and act on its current state."


class ContentTooLargeError(APIStatusError):
    """413: the request body is too large."""

    hint = "Send fewer or smaller items per request."


class UnprocessableEntityError(APIStatusError):
    """422: the body did not match the API's schema."""

    hint = "Check field names and types against the API reference."


class TooManyRequestsError(APIStatusError):
    """429: rate limited, or (``quota_exhausted``) the account has no credits left.

    ``retry_after`` is the server's requested wait in seconds, when it sent one. A quota
    error is never retried: waiting does not bring credits back.
    """

    hint = "Lower concurrency or pass rate_limit= to match the plan."

    def __str__(self) -> str:
        text = super().__str__()
        if self.quota_exhausted:
            return text.replace(self.hint, "The account is out of credits; top it up.")
        return text


class InternalServerError(APIStatusError):
    """500 or an unmapped 5xx: the API failed."""

    hint = "Retry later; quote the request id to Sarvam support if it persists."


class BadGatewayError(InternalServerError):
    """502: a proxy in front of the API failed."""


class ServiceUnavailableError(InternalServerError):
    """503: the API is overloaded; retried by the default policy."""


class GatewayTimeoutError(InternalServerError):
    """504: a proxy in front of the API timed out."""


class APIConnectionError(APIError):
    """No usable answer: the connection was refused, reset or dropped.

    ``request_sent`` is False when the request certainly never reached the server (so a
    non-idempotent call may be retried safely).
    """

    def __init__(self, message: str, *, request_sent: bool = True, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.request_sent = request_sent


class APITimeoutError(APIConnectionError):
    """An attempt ran past its timeout; raise ``timeout=`` or check the network."""


class ResponseValidationError(APIError):
    """A 2xx answer whose body does not decode into the documented schema.

    ``json_path`` is where decoding failed (``$.job_details[3].state``); ``status_code``
    and ``request_id`` identify the answer.
    """

    def __init__(
        self,
        message: str,
        *,
        json_path: str | None = None,
        status_code: int = 0,
        request_id: str | None = None,
        body: str = "",
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.json_path = json_path
        self.status_code = status_code
        self.request_id = request_id
        self.body = redact(body)


class ResponseTooLargeError(ResponseValidationError):
    """A 2xx answer larger (decoded) than the client's ``max_response_bytes``; not read on."""


class StorageError(SarvamError):
    """A presigned-URL upload or download failed.

    ``file_name`` names the file, ``status_code`` the storage answer (0 when there was
    none). The signed URL is never included: its query string is a credential.
    """

    def __init__(self, message: str, *, file_name: str, status_code: int = 0) -> None:
        super().__init__(redact(f"{file_name}: {message}"))
        self.file_name = file_name
        self.status_code = status_code


class LocalWriteError(StorageError):
    """The download arrived but the local disk refused it (full, read-only, quota).

    Nothing under the final name was written and, with a manifest, the file is not recorded
    as failed: free space and run again to download it without resubmitting.
    """


class UnsafeFileNameError(SarvamError, ValueError):
    """An output file name would land outside the output folder, or cannot be saved there
    (too long); nothing was written."""

    def __init__(self, name: str, reason: str | None = None) -> None:
        why = reason or (
            "not a plain file name (path separators, '..', absolute paths and control "
            "characters are rejected)"
        )
        super().__init__(f"refusing output file name {name!r}: {why}; rename the input")
        self.name = name


class CallbackError(SarvamError):
    """A callback request was refused; nothing of it was recorded.

    ``status_code`` is the HTTP status to answer the sender with. Raised by
    ``CallbackReceiver.receive``; the ready handlers turn it into that answer.
    """

    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CallbackUnauthorizedError(CallbackError):
    """401: the request carried no ``X-SARVAM-JOB-CALLBACK-TOKEN`` header."""

    status_code = 401


class CallbackForbiddenError(CallbackError):
    """403: the token is not one this receiver accepts (the value is never shown)."""

    status_code = 403


class CallbackTooLargeError(CallbackError):
    """413: the body is larger than the receiver's ``max_body_bytes``."""

    status_code = 413


class CallbackPayloadError(CallbackError):
    """400: the body is not a callback payload; ``json_path`` says where it failed."""

    def __init__(self, message: str, *, json_path: str | None = None) -> None:
        super().__init__(message)
        self.json_path = json_path


class JobError(SarvamError):
    """A batch job could not be driven to its end; ``job_id`` names it."""

    def __init__(self, message: str, *, job_id: str | None = None) -> None:
        super().__init__(redact(message))
        self.job_id = job_id


class FileFailedError(JobError):
    """The API did not transcribe one file of a job: its verdict, not a failure on the way.

    ``file_name`` names the file, ``state`` is what the API reported (the file's state, or
    the job's when the whole job failed), the message is the API's reason. Sending the same
    file again gives the same answer unless the file or the job parameters change.
    """

    def __init__(self, message: str, *, file_name: str, job_id: str | None, state: str | None):
        super().__init__(f"{file_name}: {message}", job_id=job_id)
        self.file_name = file_name
        self.state = state


class JobTimeoutError(JobError, TimeoutError):
    """Waiting for a job ran past its deadline; the job itself keeps running.

    ``last_status`` is the last status seen. Keep the job id and call ``get_job(job_id)``
    later to resume waiting.
    """

    def __init__(
        self, message: str, *, job_id: str | None, last_status: JobStatusResponse | None
    ) -> None:
        super().__init__(message, job_id=job_id)
        self.last_status = last_status


class OutputsNotReadyError(JobError):
    """Download-files refused a job's outputs as not ready ("not in COMPLETED state").

    Raised at once when the job's status is not terminal, and after ``waited`` seconds of
    retries when it is (the live API's download-files lags behind its status for a few
    seconds). ``state`` is the job's state as the API last reported it. Nothing was lost:
    wait, then download again.
    """

    def __init__(self, message: str, *, job_id: str, state: str, waited: float = 0.0) -> None:
        super().__init__(message, job_id=job_id)
        self.state = state
        self.waited = waited


class ManifestError(JobError):
    """A resume manifest cannot be used (unreadable, or written for other inputs)."""
