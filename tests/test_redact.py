"""The one redaction function, on every shape a signed URL or credential takes in text."""

from __future__ import annotations

import pytest

from sarvam_async import errors
from sarvam_async._redact import redact

SHAPES = [
    "https://acct.blob.core.windows.net/c/a.wav?sv=2024-01-01&se=2030&sig=SECRET",
    "HTTPS://ACCT.BLOB.CORE.WINDOWS.NET/c/a.wav?sig=SECRET",
    r"https:\/\/acct.blob.core.windows.net\/c\/a.wav?sv=1&sig=SECRET",
    "//acct.blob.core.windows.net/c/a.wav?sig=SECRET&sv=1",
    "https://s3.amazonaws.com/b/k?X-Amz-Algorithm=A&X-Amz-Signature=SECRET",
    "https://storage.googleapis.com/b/o?X-Goog-Signature=SECRET&X-Goog-Date=1",
    "sig=SECRET&sv=2024&se=2030",  # Azure SAS with sig= first, no URL
    "sv=2024&sig=SECRET&se=2030",  # ... in the middle
    "sv=2024&se=2030&sig=SECRET",  # ... last
    "X-Amz-Credential=SECRET and x-goog-credential=SECRET",
    "api-subscription-key: SECRET",
]


@pytest.mark.parametrize("text", SHAPES)
def test_every_shape_loses_its_secret(text: str) -> None:
    quoted = f'{{"error": {{"message": "could not read {text}"}}}}'
    assert "SECRET" not in redact(text)
    assert "SECRET" not in redact(quoted)


def test_ordinary_text_is_left_alone() -> None:
    text = "Expected `int`, got `str` - at `$.job_details[0]`; 3/4 done, x=y"
    assert redact(text) == text


def test_every_error_redacts_what_it_is_given() -> None:
    url = SHAPES[0]
    made = [
        errors.APIStatusError(url, status_code=400, body=url),
        errors.APIConnectionError(url),
        errors.ResponseValidationError(url, body=url),
        errors.StorageError(url, file_name="a.wav"),
        errors.JobError(url),
    ]
    for exc in made:
        assert "SECRET" not in str(exc) + repr(exc) + getattr(exc, "body", "")
