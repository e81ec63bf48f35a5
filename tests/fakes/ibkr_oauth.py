"""IBKR's OAuth 1.0a, as the gateway emulator plays it, and the consumer's credentials.

Two sides of one registration at IBKR's self-service portal:

- `OAuthConsumer`: what the person holds — consumer key, access token, the access token
  secret *encrypted* with their public encryption key (PKCS#1 v1.5, base64, as IBKR hands
  it out), their private signature and encryption keys (RSA 2048, made at test time, never
  stored in the repository) and the Diffie-Hellman prime. `write(dir)` puts the keys in
  files and returns the `IBIND_OAUTH1A_*` variables that point ibind at them.
- `OAuthServer`: what IBKR knows — the consumer key, the access token and the secret's
  plaintext, the consumer's PUBLIC signature key, the prime. It answers
  `POST oauth/live_session_token` like IBKR: checks consumer key, access token, realm,
  timestamp freshness and nonce reuse, verifies the RSA-SHA256 signature of the base string
  (with the decrypted secret prepended in hex, as ibind builds it), answers its half of the
  Diffie-Hellman exchange and derives the same live session token (LST) the client does:
  HMAC-SHA1(key = the shared secret's bytes, message = the secret). Every other request
  must carry an `Authorization: OAuth ...` header signed HMAC-SHA256 with a live LST.

What ibind 0.2.2 signs for a request (checked in `ibind/oauth/oauth1a.py` and
`IbkrClient._get_headers`): the method, the URL *without* its query string, and the
`oauth_*` parameters of the header — the query parameters are not part of its base string.
The server accepts that, and also the RFC 5849 form with the query parameters included, so
either way only a signature made with the right LST passes.

Scriptable: `expire_after(n)` (every LST expires after n more signed requests),
`lst_lifetime` (seconds, on the wall clock, so time-machine travels it), `bad_signatures`
(the next n signed requests are refused as badly signed), `revoke_on_new` (a new LST
revokes the older ones), and through the gateway's `fail(...)` any status on any path
(e.g. 410 on `oauth/live_session_token`).
"""

from __future__ import annotations

import base64
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from hashlib import sha1, sha256
from pathlib import Path
from urllib.parse import parse_qsl, quote_plus, unquote_plus

from Crypto.Cipher import PKCS1_v1_5 as PKCS1_v1_5_Cipher
from Crypto.Hash import SHA256
from Crypto.PublicKey import RSA
from Crypto.Signature import PKCS1_v1_5 as PKCS1_v1_5_Signature

LST_PATH = "oauth/live_session_token"

# RFC 3526, group 14: the 2048-bit MODP prime (generator 2).
DH_PRIME = (
    "FFFFFFFFFFFFFFFFC90FDAA22168C234C4C6628B80DC1CD129024E088A67CC74020BBEA63B139B22514A08798E3404DD"
    "EF9519B3CD3A431B302B0A6DF25F14374FE1356D6D51C245E485B576625E7EC6F44C42E9A637ED6B0BFF5CB6F406B7ED"
    "EE386BFB5A899FA5AE9F24117C4B1FE649286651ECE45B3DC2007CB8A163BF0598DA48361C55D39A69163FA8FD24CF5F"
    "83655D23DCA3AD961C62F356208552BB9ED529077096966D670C354E4ABC9804F1746C08CA18217C32905E462E36CE3B"
    "E39E772C180E86039B2783A2EC07A28FB5C55DF06F4C52C9DE2BCBF6955817183995497CEA956AE515D2261898FA0510"
    "15728E5A8AACAA68FFFFFFFFFFFFFFFF"
)
TIMESTAMP_TOLERANCE = 300  # seconds either side of the server's clock


# -- the consumer's side ---------------------------------------------------------------------------


@dataclass
class OAuthConsumer:
    consumer_key: str
    access_token: str
    secret: bytes  # the access token secret's plaintext (IBKR knows it; the person holds it encrypted)
    signature_key: RSA.RsaKey
    encryption_key: RSA.RsaKey
    dh_prime: str = DH_PRIME
    realm: str = "limited_poa"

    @classmethod
    def generate(cls, consumer_key: str = "DCAEMULAT", bits: int = 2048) -> "OAuthConsumer":
        return cls(consumer_key, secrets.token_hex(10), secrets.token_bytes(32), RSA.generate(bits), RSA.generate(bits))

    @property
    def encrypted_secret(self) -> str:
        """The access token secret as IBKR hands it out: encrypted for the consumer."""
        return base64.b64encode(PKCS1_v1_5_Cipher.new(self.encryption_key.publickey()).encrypt(self.secret)).decode()

    def server(self, **kwargs) -> "OAuthServer":
        """IBKR's side of this registration: it knows only the PUBLIC signature key."""
        return OAuthServer(self.consumer_key, self.access_token, self.secret, self.signature_key.publickey(),
                           self.dh_prime, self.realm, **kwargs)

    def write(self, directory: Path, encrypted_secret: str | None = None) -> dict[str, str]:
        """The private keys in files (readable by their owner only) and the variables that
        point ibind at them (key *paths*, never key text)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for name, key in (("signature", self.signature_key), ("encryption", self.encryption_key)):
            path = directory / f"private_{name}.pem"
            path.touch(mode=0o600)
            path.write_bytes(key.export_key())
            (directory / f"public_{name}.pem").write_bytes(key.publickey().export_key())
            paths[name] = str(path)
        return {
            "IBIND_OAUTH1A_CONSUMER_KEY": self.consumer_key,
            "IBIND_OAUTH1A_ACCESS_TOKEN": self.access_token,
            "IBIND_OAUTH1A_ACCESS_TOKEN_SECRET": encrypted_secret or self.encrypted_secret,
            "IBIND_OAUTH1A_DH_PRIME": self.dh_prime,
            "IBIND_OAUTH1A_SIGNATURE_KEY_FP": paths["signature"],
            "IBIND_OAUTH1A_ENCRYPTION_KEY_FP": paths["encryption"],
            "IBIND_OAUTH1A_REALM": self.realm,
        }

    def save(self, directory: Path) -> dict[str, str]:
        """For the emulator started by hand: the keys, the variables in `oauth.env`, and what
        the emulator needs to recognise this consumer again after a restart."""
        environ = self.write(directory)
        (Path(directory) / "consumer.json").write_text(json.dumps(
            {"consumer_key": self.consumer_key, "access_token": self.access_token, "realm": self.realm,
             "access_token_secret": environ["IBIND_OAUTH1A_ACCESS_TOKEN_SECRET"]}))
        env = Path(directory) / "oauth.env"
        env.touch(mode=0o600)
        env.write_text("".join(f"{k}={v}\n" for k, v in {"IBIND_USE_OAUTH": "true", **environ}.items()))
        return environ

    @classmethod
    def load(cls, directory: Path) -> "OAuthConsumer":
        directory = Path(directory)
        saved = json.loads((directory / "consumer.json").read_text())
        signature = RSA.import_key((directory / "private_signature.pem").read_bytes())
        encryption = RSA.import_key((directory / "private_encryption.pem").read_bytes())
        secret = PKCS1_v1_5_Cipher.new(encryption).decrypt(base64.b64decode(saved["access_token_secret"]), None)
        return cls(saved["consumer_key"], saved["access_token"], secret, signature, encryption, realm=saved["realm"])


# -- IBKR's side --------------------------------------------------------------------------------------


class OAuthRefused(Exception):
    def __init__(self, status: int, error: str):
        super().__init__(error)
        self.status = status
        self.body = {"error": error, "statusCode": status}


@dataclass
class _Token:
    value: bytes  # the LST's raw bytes (ibind holds it base64)
    expires_at: float  # wall clock, seconds
    revoked: bool = False


@dataclass
class OAuthServer:
    consumer_key: str
    access_token: str
    secret: bytes
    signature_public_key: RSA.RsaKey
    dh_prime: str = DH_PRIME
    realm: str = "limited_poa"
    dh_generator: int = 2
    lst_lifetime: float = 24 * 3600.0
    revoke_on_new: bool = False
    bad_signatures: int = 0  # the next n signed requests are refused as badly signed
    tokens: list[_Token] = field(default_factory=list)
    handshakes: int = 0  # live session tokens issued
    refusals: list[str] = field(default_factory=list)  # why each refused request was refused
    _nonces: set = field(default_factory=set)
    _expire_countdown: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- scripting -----------------------------------------------------------------------------

    def expire_after(self, requests: int) -> None:
        """Every LST issued so far expires after `requests` more signed requests pass."""
        with self._lock:
            self._expire_countdown = requests

    def expire_all(self) -> None:
        with self._lock:
            for t in self.tokens:
                t.expires_at = 0.0

    # -- the handshake -------------------------------------------------------------------------

    def live_session_token(self, method: str, url: str, authorization: str | None) -> dict:
        """The answer to `POST oauth/live_session_token`; raises OAuthRefused (401 etc.)."""
        with self._lock:
            params = self._common_checks(method, authorization, "RSA-SHA256")
            challenge = params.get("diffie_hellman_challenge", "")
            prime = int(self.dh_prime, 16)
            try:
                a = int(challenge, 16)
            except ValueError:
                raise self._refuse(400, "diffie_hellman_challenge is not a hex number") from None
            if not 1 < a < prime - 1:
                raise self._refuse(400, "invalid diffie_hellman_challenge")
            signature = _unb64(unquote_plus(params.get("oauth_signature", "")))
            prepend = self.secret.hex()
            digest = SHA256.new((prepend + _base_string(method, url, params)).encode())
            if signature is None or not _rsa_verify(self.signature_public_key, digest, signature):
                raise self._refuse(401, "invalid signature")
            b = secrets.randbits(256)
            shared = pow(a, b, prime)
            key = shared.to_bytes((shared.bit_length() + 8) // 8, "big")  # Java BigInteger.toByteArray
            lst = hmac.new(key, self.secret, sha1).digest()
            if self.revoke_on_new:
                for t in self.tokens:
                    t.revoked = True
            expires = time.time() + self.lst_lifetime
            self.tokens.append(_Token(lst, expires))
            self.handshakes += 1
            return {"diffie_hellman_response": format(pow(self.dh_generator, b, prime), "x"),
                    "live_session_token_signature": hmac.new(lst, self.consumer_key.encode(), sha1).hexdigest(),
                    "live_session_token_expiration": int(expires * 1000)}

    # -- every other request -------------------------------------------------------------------

    def check(self, method: str, url: str, query: str, authorization: str | None) -> None:
        """A request to anything but the handshake: signed with a live LST, or OAuthRefused."""
        with self._lock:
            if not authorization:
                raise self._refuse(401, "not authenticated: the request carries no OAuth Authorization header")
            params = self._common_checks(method, authorization, "HMAC-SHA256")
            given = unquote_plus(params.get("oauth_signature", ""))
            if self.bad_signatures > 0:
                self.bad_signatures -= 1
                raise self._refuse(401, "invalid signature")
            signed_forms = [_base_string(method, url, params)]
            if query:  # the RFC 5849 form, with the query parameters signed too
                signed_forms.append(_base_string(method, url, {**params, **dict(parse_qsl(query))}))
            token = next((t for t in self.tokens for form in signed_forms
                          if hmac.compare_digest(base64.b64encode(hmac.new(t.value, form.encode(), sha256).digest())
                                                 .decode(), given)), None)
            if token is None:
                raise self._refuse(401, "invalid signature")
            if token.revoked or token.expires_at <= time.time():
                raise self._refuse(401, "live session token expired")
            if self._expire_countdown is not None:
                self._expire_countdown -= 1
                if self._expire_countdown <= 0:
                    self._expire_countdown = None
                    for t in self.tokens:
                        t.expires_at = 0.0

    # -- shared --------------------------------------------------------------------------------

    def _common_checks(self, method: str, authorization: str | None, signature_method: str) -> dict[str, str]:
        if not authorization or not authorization.startswith("OAuth "):
            raise self._refuse(401, "not authenticated: no OAuth Authorization header")
        params = dict(re.findall(r'(\w+)="([^"]*)"', authorization))
        if params.get("oauth_consumer_key") != self.consumer_key:
            raise self._refuse(401, "invalid consumer")
        if params.get("oauth_token") != self.access_token:
            raise self._refuse(401, "invalid token")
        if params.get("realm") != self.realm:
            raise self._refuse(401, "invalid realm")
        if params.get("oauth_signature_method") != signature_method:
            raise self._refuse(401, f"signature method must be {signature_method}")
        try:
            stamp = int(params.get("oauth_timestamp", ""))
        except ValueError:
            raise self._refuse(401, "invalid timestamp") from None
        if abs(time.time() - stamp) > TIMESTAMP_TOLERANCE:
            raise self._refuse(401, "timestamp out of range")
        nonce = params.get("oauth_nonce", "")
        if not nonce or nonce in self._nonces:
            raise self._refuse(401, "nonce already used")
        self._nonces.add(nonce)
        return params

    def _refuse(self, status: int, error: str) -> OAuthRefused:
        self.refusals.append(error)
        return OAuthRefused(status, error)


def _base_string(method: str, url: str, params: dict[str, str]) -> str:
    """ibind's (and OAuth 1.0a's) base string: METHOD&url&sorted k=v pairs, percent-encoded;
    the signature and the realm are not part of it."""
    pairs = "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k not in ("oauth_signature", "realm"))
    return "&".join([method, quote_plus(url), quote_plus(pairs)])


def _unb64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:
        return None


def _rsa_verify(key: RSA.RsaKey, digest, signature: bytes) -> bool:
    try:
        return PKCS1_v1_5_Signature.new(key).verify(digest, signature)
    except (ValueError, TypeError):
        return False
