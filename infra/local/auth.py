"""The local stack's sign-in: moto's Cognito user pool stands in for Amazon Cognito, and the gateway verifies tokens
as API Gateway's Cognito authoriser does on the personal routes (``/me...``).

A token passes only if its RS256 signature verifies against a key the pool serves
(``/<pool id>/.well-known/jwks.json``, fetched once and cached), it is not expired (a minute of clock skew allowed, as
Cognito's own libraries do), its issuer is the pool (``https://cognito-idp.<region>.amazonaws.com/<pool id>``), its
audience is the page's app client, and it is an ID token (``token_use`` ``id``: API Gateway's authoriser without
OAuth scopes takes ID tokens). PyJWT does the JWT work.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from infra.config import PASSWORD_MIN_LENGTH

CLOCK_SKEW_S = 60
PASSWORD_POLICY = {
    "MinimumLength": PASSWORD_MIN_LENGTH,
    "RequireUppercase": False,
    "RequireLowercase": True,
    "RequireNumbers": True,
    "RequireSymbols": False,
}


class TokenError(Exception):
    """Why a token was refused (the 401's message)."""


@dataclass(frozen=True)
class UserPool:
    """What the gateway and the page need to know of the pool (picklable: it crosses into the API processes)."""

    pool_id: str
    client_id: str
    region: str
    endpoint_url: str  # the Cognito API (locally moto's server)

    @property
    def issuer(self) -> str:
        return f"https://cognito-idp.{self.region}.amazonaws.com/{self.pool_id}"

    @property
    def jwks_url(self) -> str:
        return f"{self.endpoint_url.rstrip('/')}/{self.pool_id}/.well-known/jwks.json"


def create_pool(cognito: Any, name: str, region: str, endpoint_url: str) -> UserPool:
    """A user pool like the deployed one (sign-in with e-mail, the same password policy) and the page's app client
    (no secret; user-password and refresh-token flows)."""
    pool = cognito.create_user_pool(
        PoolName=name,
        UsernameAttributes=["email"],
        AutoVerifiedAttributes=["email"],
        Policies={"PasswordPolicy": PASSWORD_POLICY},
    )["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName="web",
        GenerateSecret=False,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        PreventUserExistenceErrors="ENABLED",
    )["UserPoolClient"]
    return UserPool(pool["Id"], client["ClientId"], region, endpoint_url)


class TokenVerifier:
    """Verify a pool's ID tokens (one per API process; the key set is fetched on first use and cached)."""

    def __init__(self, pool: UserPool) -> None:
        self.pool = pool
        self._keys = jwt.PyJWKClient(pool.jwks_url, cache_keys=True, lifespan=3600, timeout=5)

    def claims(self, authorization: str | None) -> dict[str, Any]:
        """The claims of the token in an ``Authorization`` header (``Bearer <token>`` or the token alone)."""
        token = (authorization or "").strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        if not token:
            raise TokenError("no token: send the ID token in the Authorization header")
        try:
            key = self._keys.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=self.pool.client_id,
                issuer=self.pool.issuer,
                leeway=CLOCK_SKEW_S,
                options={"require": ["exp", "iat", "iss", "aud", "sub", "token_use"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired: sign in again (or refresh it)") from None
        except jwt.PyJWKClientError as exc:
            raise TokenError(f"the token's signing key is not the pool's ({exc})") from None
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"the token is not valid: {exc}") from None
        if claims.get("token_use") != "id":
            raise TokenError(f"an ID token is needed, not an {claims.get('token_use')} token")
        # API Gateway hands claims to the function as strings
        return {k: v if isinstance(v, str) else str(v) for k, v in claims.items()}
