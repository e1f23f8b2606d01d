"""The tokens of the JWT attack matrix, for the serving tests."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt


def make_token(key, alg: str = "HS256", **claims) -> str:
    "A JWT with sub, aud, iss and exp (one minute) signed by `key`; a claim given as None is left out."
    base = {"sub": "x", "aud": "fusion", "iss": "fusion", "exp": int(time.time()) + 60}
    return jwt.encode({k: v for k, v in {**base, **claims}.items() if v is not None}, key, algorithm=alg)


def hs256_with(key: bytes, claims: dict) -> str:
    "An HS256 token made by hand (PyJWT refuses to use a PEM public key as an HMAC secret)."
    enc = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()  # noqa: E731
    head = enc(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + enc(json.dumps(claims).encode())
    return head + "." + enc(hmac.new(key, head.encode(), hashlib.sha256).digest())


def attack_tokens(rsa_keys: tuple[str, str], secret: str) -> dict[str, str | None]:
    "Tokens the server must refuse (None: no token), by name; `secret` is the server's HS256 secret."
    private, public = rsa_keys
    claims = {"sub": "x", "aud": "fusion", "iss": "fusion", "exp": int(time.time()) + 60}
    return {
        "no token": None,
        "alg none": jwt.encode(claims, None, algorithm="none"),
        "wrong key": make_token("another-secret-" + "y" * 32),
        "expired": make_token(secret, exp=int(time.time()) - 10),
        "no exp": make_token(secret, exp=None),
        "wrong aud": make_token(secret, aud="somebody-else"),
        "wrong iss": make_token(secret, iss="evil"),
        "HS256 signed with the RS public key": hs256_with(public.encode(), claims),
        "HS512": make_token(secret, alg="HS512"),
        "garbage": "not.a.jwt",
    }
