//! JWT authentication of the publisher (HS256, HS384 or HS512).
//!
//! A write must carry `Authorization: Bearer <token>`. The token's header must name the
//! configured algorithm (never `none`), its HMAC must verify under the secret (compared in
//! constant time), and its `exp` (seconds since the Unix epoch, required) must lie in the future;
//! there is no leeway. With `--jwt-expiring-sec N > 0` the token must also carry `iat`, not
//! issued in the future, and live at most N seconds (`exp − iat ≤ N`). A token with a `jti` is
//! accepted once: its ID is remembered until the token expires.
//!
//! With `--jwt-verify-upload`, the optional claims constrain the upload:
//! `epochs` (the requested epochs ahead must equal it), `max_epochs` (must not exceed it),
//! `size` (the body must be exactly that long), `max_size` (must not be longer), and
//! `send_object_to` (the blob object goes to that address; a request naming another address
//! is refused). Without it, the claims are not checked.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use floe_ledger::Address;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};

use crate::options::{DaemonOptions, JwtAlgorithm};

/// Most `jti`s remembered at once; expired ones are forgotten first.
const MAX_REMEMBERED_IDS: usize = 100_000;

/// The claims a publisher token may carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// A unique token ID; a token with one is accepted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_object_to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_epochs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
}

/// Why a token was refused (all answered with 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this publisher requires `Authorization: Bearer <JWT>`")]
    Missing,
    #[error("the token is malformed: {0}")]
    Malformed(String),
    #[error("the token is signed with {got}; this publisher accepts {want} only")]
    WrongAlgorithm { got: String, want: &'static str },
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token expired at {exp} (now {now})")]
    Expired { exp: u64, now: u64 },
    #[error("the token must carry `iat` (issued-at)")]
    MissingIssuedAt,
    #[error("the token is issued in the future ({iat}; now {now})")]
    IssuedInFuture { iat: u64, now: u64 },
    #[error("the token lives {lifetime} s; this publisher accepts at most {max} s")]
    TooLongLived { lifetime: u64, max: u64 },
    #[error("the token {0:?} was already used")]
    Replayed(String),
    #[error("the upload does not match the token: {0}")]
    ClaimMismatch(String),
}

/// Publisher token checking.
pub struct JwtAuth {
    algorithm: JwtAlgorithm,
    secret: Vec<u8>,
    expiring_sec: u64,
    verify_upload: bool,
    /// `jti` → expiry of the tokens already used.
    used: Mutex<BTreeMap<String, u64>>,
}

impl std::fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtAuth({})", self.algorithm.name())
    }
}

/// The key bytes of a `--jwt-decode-secret`: hex after `0x`, else the UTF-8 bytes.
pub fn secret_bytes(secret: &str) -> Result<Vec<u8>, String> {
    match secret.strip_prefix("0x") {
        Some(h) => {
            hex::decode(h).map_err(|e| format!("the 0x-prefixed JWT secret is not hex: {e}"))
        }
        None => Ok(secret.as_bytes().to_vec()),
    }
}

fn mac(algorithm: JwtAlgorithm, key: &[u8], message: &[u8]) -> Vec<u8> {
    fn run<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        m.update(message);
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        JwtAlgorithm::Hs256 => run::<Hmac<sha2::Sha256>>(key, message),
        JwtAlgorithm::Hs384 => run::<Hmac<sha2::Sha384>>(key, message),
        JwtAlgorithm::Hs512 => run::<Hmac<sha2::Sha512>>(key, message),
    }
}

fn verify_mac(algorithm: JwtAlgorithm, key: &[u8], message: &[u8], tag: &[u8]) -> bool {
    fn run<M: Mac + KeyInit>(key: &[u8], message: &[u8], tag: &[u8]) -> bool {
        let mut m = <M as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length");
        m.update(message);
        m.verify_slice(tag).is_ok()
    }
    match algorithm {
        JwtAlgorithm::Hs256 => run::<Hmac<sha2::Sha256>>(key, message, tag),
        JwtAlgorithm::Hs384 => run::<Hmac<sha2::Sha384>>(key, message, tag),
        JwtAlgorithm::Hs512 => run::<Hmac<sha2::Sha512>>(key, message, tag),
    }
}

/// A signed token for `claims` (for operators issuing tokens, and for tests).
pub fn mint(algorithm: JwtAlgorithm, key: &[u8], claims: &Claims) -> String {
    let header = serde_json::json!({"alg": algorithm.name(), "typ": "JWT"});
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims serialise")),
    );
    let tag = mac(algorithm, key, signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag))
}

fn decode_part(part: &str, what: &str) -> Result<Vec<u8>, AuthError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| AuthError::Malformed(format!("its {what} is not base64url")))
}

#[derive(Deserialize)]
struct Header {
    alg: String,
}

/// What the upload asks for, to compare with the claims.
#[derive(Clone, Debug)]
pub struct Upload {
    pub epochs_ahead: u32,
    pub size: u64,
    pub send_object_to: Option<Address>,
}

impl JwtAuth {
    /// The checker `options` ask for, if any.
    pub fn from_options(options: &DaemonOptions) -> Result<Option<Self>, String> {
        let Some(secret) = &options.jwt_decode_secret else {
            return Ok(None);
        };
        Ok(Some(Self {
            algorithm: options.jwt_algorithm,
            secret: secret_bytes(secret)?,
            expiring_sec: options.jwt_expiring_sec,
            verify_upload: options.jwt_verify_upload,
            used: Mutex::new(BTreeMap::new()),
        }))
    }

    /// Whether upload parameters are checked against the claims.
    pub fn verifies_upload(&self) -> bool {
        self.verify_upload
    }

    /// Check the `Authorization` header's token at time `now` (seconds); returns its claims.
    /// A `jti` is not yet consumed (see [`JwtAuth::consume`]).
    pub fn verify(&self, authorization: Option<&str>, now: u64) -> Result<Claims, AuthError> {
        let token = authorization
            .and_then(|h| {
                let (scheme, rest) = h.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
            })
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Missing)?;
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(AuthError::Malformed(
                "a JWT has three dot-separated parts".into(),
            ));
        };
        let h: Header = serde_json::from_slice(&decode_part(header, "header")?)
            .map_err(|e| AuthError::Malformed(format!("header: {e}")))?;
        if h.alg != self.algorithm.name() {
            return Err(AuthError::WrongAlgorithm {
                got: h.alg,
                want: self.algorithm.name(),
            });
        }
        let tag = decode_part(signature, "signature")?;
        let signing_input = &token[..header.len() + 1 + payload.len()];
        if !verify_mac(self.algorithm, &self.secret, signing_input.as_bytes(), &tag) {
            return Err(AuthError::BadSignature);
        }
        let claims: Claims = serde_json::from_slice(&decode_part(payload, "payload")?)
            .map_err(|e| AuthError::Malformed(format!("claims: {e}")))?;
        if claims.exp <= now {
            return Err(AuthError::Expired {
                exp: claims.exp,
                now,
            });
        }
        if self.expiring_sec > 0 {
            let iat = claims.iat.ok_or(AuthError::MissingIssuedAt)?;
            if iat > now {
                return Err(AuthError::IssuedInFuture { iat, now });
            }
            let lifetime = claims.exp.saturating_sub(iat);
            if lifetime > self.expiring_sec {
                return Err(AuthError::TooLongLived {
                    lifetime,
                    max: self.expiring_sec,
                });
            }
        }
        Ok(claims)
    }

    /// Accept the token's `jti` once (until the token expires).
    pub fn consume(&self, claims: &Claims, now: u64) -> Result<(), AuthError> {
        let Some(jti) = &claims.jti else {
            return Ok(());
        };
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        if used.get(jti).is_some_and(|&exp| exp > now) {
            return Err(AuthError::Replayed(jti.clone()));
        }
        if used.len() >= MAX_REMEMBERED_IDS {
            used.retain(|_, exp| *exp > now);
            while used.len() >= MAX_REMEMBERED_IDS {
                used.pop_first();
            }
        }
        used.insert(jti.clone(), claims.exp);
        Ok(())
    }

    /// With `--jwt-verify-upload`, check `upload` against the claims; returns where the blob
    /// object goes (the token's `send_object_to` wins when the request names none).
    pub fn check_upload(
        &self,
        claims: &Claims,
        upload: &Upload,
    ) -> Result<Option<Address>, AuthError> {
        if !self.verify_upload {
            return Ok(upload.send_object_to);
        }
        let mismatch = |m: String| Err(AuthError::ClaimMismatch(m));
        if let Some(e) = claims.epochs
            && e != upload.epochs_ahead
        {
            return mismatch(format!(
                "it allows exactly {e} epochs, the request asks for {}",
                upload.epochs_ahead
            ));
        }
        if let Some(m) = claims.max_epochs
            && upload.epochs_ahead > m
        {
            return mismatch(format!(
                "it allows at most {m} epochs, the request asks for {}",
                upload.epochs_ahead
            ));
        }
        if let Some(s) = claims.size
            && s != upload.size
        {
            return mismatch(format!(
                "it allows exactly {s} bytes, the body has {}",
                upload.size
            ));
        }
        if let Some(m) = claims.max_size
            && upload.size > m
        {
            return mismatch(format!(
                "it allows at most {m} bytes, the body has {}",
                upload.size
            ));
        }
        match &claims.send_object_to {
            None => Ok(upload.send_object_to),
            Some(s) => {
                let claimed: Address = s
                    .parse()
                    .map_err(|e| AuthError::Malformed(format!("send_object_to: {e}")))?;
                match upload.send_object_to {
                    Some(a) if a != claimed => mismatch(format!(
                        "it sends the blob object to {claimed}, the request to {a}"
                    )),
                    _ => Ok(Some(claimed)),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(expiring_sec: u64, verify_upload: bool) -> JwtAuth {
        JwtAuth::from_options(&DaemonOptions {
            jwt_decode_secret: Some("secret".into()),
            jwt_expiring_sec: expiring_sec,
            jwt_verify_upload: verify_upload,
            ..DaemonOptions::default()
        })
        .unwrap()
        .unwrap()
    }

    fn bearer(t: &str) -> String {
        format!("Bearer {t}")
    }

    #[test]
    fn hs256_matches_a_known_answer() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let tag = mac(
            JwtAlgorithm::Hs256,
            b"Jefe",
            b"what do ya want for nothing?",
        );
        assert_eq!(
            hex::encode(tag),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn valid_tokens_pass_and_every_defect_is_refused() {
        let a = auth(0, false);
        let claims = Claims {
            exp: 2_000,
            ..Claims::default()
        };
        let good = mint(JwtAlgorithm::Hs256, b"secret", &claims);
        assert_eq!(a.verify(Some(&bearer(&good)), 1_000).unwrap(), claims);
        assert_eq!(a.verify(None, 1_000), Err(AuthError::Missing));
        assert_eq!(a.verify(Some("Basic abc"), 1_000), Err(AuthError::Missing));
        assert!(matches!(
            a.verify(Some(&bearer(&good)), 2_000),
            Err(AuthError::Expired { .. })
        ));
        let other_key = mint(JwtAlgorithm::Hs256, b"wrong", &claims);
        assert_eq!(
            a.verify(Some(&bearer(&other_key)), 1_000),
            Err(AuthError::BadSignature)
        );
        let other_alg = mint(JwtAlgorithm::Hs512, b"secret", &claims);
        assert!(matches!(
            a.verify(Some(&bearer(&other_alg)), 1_000),
            Err(AuthError::WrongAlgorithm { .. })
        ));
        // A tampered payload breaks the signature.
        let parts: Vec<&str> = good.split('.').collect();
        let forged_claims = Claims {
            exp: 9_999,
            ..Claims::default()
        };
        let forged = format!(
            "{}.{}.{}",
            parts[0],
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged_claims).unwrap()),
            parts[2]
        );
        assert_eq!(
            a.verify(Some(&bearer(&forged)), 1_000),
            Err(AuthError::BadSignature)
        );
        // An unsigned ("none") token is refused.
        let none = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            parts[1]
        );
        assert!(matches!(
            a.verify(Some(&bearer(&none)), 1_000),
            Err(AuthError::WrongAlgorithm { .. })
        ));
        for junk in ["a.b", "a.b.c.d", "!!.??.##"] {
            assert!(matches!(
                a.verify(Some(&bearer(junk)), 1_000),
                Err(AuthError::Malformed(_))
            ));
        }
    }

    #[test]
    fn lifetimes_are_bounded_and_ids_are_single_use() {
        let a = auth(600, false);
        let token = |iat: Option<u64>, exp: u64| {
            bearer(&mint(
                JwtAlgorithm::Hs256,
                b"secret",
                &Claims {
                    exp,
                    iat,
                    ..Claims::default()
                },
            ))
        };
        assert!(a.verify(Some(&token(Some(900), 1_500)), 1_000).is_ok());
        assert_eq!(
            a.verify(Some(&token(None, 1_500)), 1_000),
            Err(AuthError::MissingIssuedAt)
        );
        assert!(matches!(
            a.verify(Some(&token(Some(900), 5_000)), 1_000),
            Err(AuthError::TooLongLived { .. })
        ));
        assert!(matches!(
            a.verify(Some(&token(Some(1_100), 1_500)), 1_000),
            Err(AuthError::IssuedInFuture { .. })
        ));

        let claims = Claims {
            exp: 2_000,
            jti: Some("once".into()),
            ..Claims::default()
        };
        a.consume(&claims, 1_000).unwrap();
        assert!(matches!(
            a.consume(&claims, 1_001),
            Err(AuthError::Replayed(_))
        ));
        // Once expired, the ID may be reused by a new token.
        let later = Claims {
            exp: 3_000,
            ..claims
        };
        a.consume(&later, 2_500).unwrap();
    }

    #[test]
    fn upload_claims_are_checked_only_when_asked() {
        let alice: Address = format!("0x{}", "aa".repeat(32)).parse().unwrap();
        let bob: Address = format!("0x{}", "bb".repeat(32)).parse().unwrap();
        let claims = Claims {
            exp: 1,
            max_epochs: Some(5),
            max_size: Some(100),
            send_object_to: Some(alice.to_string()),
            ..Claims::default()
        };
        let upload = |epochs_ahead, size, to| Upload {
            epochs_ahead,
            size,
            send_object_to: to,
        };
        let lax = auth(0, false);
        assert_eq!(
            lax.check_upload(&claims, &upload(50, 1000, Some(bob))),
            Ok(Some(bob))
        );
        let strict = auth(0, true);
        assert_eq!(
            strict.check_upload(&claims, &upload(5, 100, None)),
            Ok(Some(alice))
        );
        for bad in [
            upload(6, 100, None),
            upload(5, 101, None),
            upload(1, 1, Some(bob)),
        ] {
            assert!(matches!(
                strict.check_upload(&claims, &bad),
                Err(AuthError::ClaimMismatch(_))
            ));
        }
        let exact = Claims {
            exp: 1,
            epochs: Some(2),
            size: Some(10),
            ..Claims::default()
        };
        assert!(strict.check_upload(&exact, &upload(2, 10, None)).is_ok());
        assert!(strict.check_upload(&exact, &upload(3, 10, None)).is_err());
        assert!(strict.check_upload(&exact, &upload(2, 11, None)).is_err());
    }
}
