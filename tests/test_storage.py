"""The object store client against the real SeaweedFS: a body is signed with the digest computed while receiving it."""

from __future__ import annotations

import hashlib
import io
import os

import pytest

from backend.storage import SINGLE_PUT_MAX, EmbeddedSeaweed, ObjectStore
from tests.conftest import Bucket


@pytest.fixture
def store(object_store: EmbeddedSeaweed) -> ObjectStore:
    return ObjectStore(object_store.config())


@pytest.mark.parametrize("size", [1, 300_000, SINGLE_PUT_MAX + 1])
async def test_a_put_signed_with_the_known_digest_stores_the_bytes(store: ObjectStore, bucket: Bucket, size: int) -> None:
    body = os.urandom(size)
    key = f"tests/known-digest/{size}"
    await store.put(key, io.BytesIO(body), len(body), "application/octet-stream", hashlib.sha256(body).hexdigest())
    assert bucket.read(key) == body
