"""`verify_authorization`, the one token check (the fast path calls it, `ClaimsDep` wraps it)."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException

from fusion.serving.auth import TokenVerifier, mint_token
from fusion.serving.deps import verify_authorization

SECRET = "deps-secret-" + "d" * 32


@pytest.mark.parametrize("header, reason", [
    (None, "an 'Authorization: Bearer <JWT>' header is required"),
    ("Basic dXNlcjpwYXNz", "an 'Authorization: Bearer <JWT>' header is required"),
    ("Bearer ", "an 'Authorization: Bearer <JWT>' header is required"),
    ("Bearer not.a.jwt", "DecodeError: Invalid header padding"),
    (f"Bearer {mint_token(SECRET, 'x', 'someone-else', 'fusion')}", "InvalidAudienceError: Audience doesn't match"),
], ids=["none", "basic", "empty", "garbage", "audience"])
def test_a_missing_or_bad_token_is_a_401_that_says_why(header, reason):
    with pytest.raises(HTTPException) as info:
        verify_authorization(TokenVerifier("fusion", "fusion", secret=SECRET), header)
    assert info.value.status_code == 401 and info.value.headers == {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    assert info.value.detail.startswith(f"not authenticated: {reason}"), info.value.detail


def test_a_good_token_gives_its_claims():
    claims = verify_authorization(TokenVerifier("fusion", "fusion", secret=SECRET),
                                  f"bearer {mint_token(SECRET, 'alice', 'fusion', 'fusion')}")
    assert (claims["sub"], claims["aud"], claims["iss"]) == ("alice", "fusion", "fusion")
