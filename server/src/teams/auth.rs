//! Bot Framework request authentication: the `Authorization: Bearer` JWT must be RS256,
//! signed by a key from the configured OpenID metadata (fetched, then cached), issued by the
//! Bot Framework issuer, for audience = our app id, unexpired (with skew), and its
//! `serviceurl` claim must equal the activity's `serviceUrl` — replies carry our own token
//! there, so a forged `serviceUrl` must never be followed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::config::TeamsConfig;
use crate::error::{Result, ServerError};

/// The claims medic reads.
#[derive(Debug, Deserialize)]
pub(crate) struct Claims {
    #[serde(default)]
    pub serviceurl: Option<String>,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    /// No bearer token (401).
    Missing,
    /// The token is invalid for the given reason (403).
    Invalid(String),
    /// Keys could not be fetched (503: retry later).
    KeysUnavailable(String),
}

struct Keys {
    by_kid: HashMap<String, DecodingKey>,
    fetched: Instant,
}

/// Signing keys fetched from the OpenID metadata, cached for `keys_ttl_secs`; an unknown
/// `kid` triggers one refetch at most every minute (key rollover without a restart).
#[derive(Default)]
pub(crate) struct KeyCache {
    keys: Mutex<Option<Keys>>,
}

impl std::fmt::Debug for KeyCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyCache").finish_non_exhaustive()
    }
}

const REFETCH_MIN: Duration = Duration::from_secs(60);

async fn fetch(http: &reqwest::Client, openid_url: &str) -> Result<HashMap<String, DecodingKey>> {
    let fail = |url: &str, reason: String| ServerError::OpenId {
        url: url.to_owned(),
        reason,
    };
    let meta: Value = http
        .get(openid_url)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| fail(openid_url, e.to_string()))?
        .json()
        .await
        .map_err(|e| fail(openid_url, e.to_string()))?;
    let Some(jwks_uri) = meta["jwks_uri"].as_str() else {
        return Err(fail(
            openid_url,
            "the OpenID metadata has no jwks_uri".into(),
        ));
    };
    let set: Value = http
        .get(jwks_uri)
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| fail(jwks_uri, e.to_string()))?
        .json()
        .await
        .map_err(|e| fail(jwks_uri, e.to_string()))?;
    let mut out = HashMap::new();
    for k in set["keys"].as_array().into_iter().flatten() {
        // Skip keys this library cannot use (other key types) instead of failing them all.
        let Some(kid) = k["kid"].as_str() else {
            continue;
        };
        let Ok(jwk) = serde_json::from_value::<Jwk>(k.clone()) else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            out.insert(kid.to_owned(), key);
        }
    }
    if out.is_empty() {
        return Err(fail(
            jwks_uri,
            "no usable RSA signing key in the key set".into(),
        ));
    }
    Ok(out)
}

impl KeyCache {
    /// Forget the keys (a reload may point at another OpenID URL).
    pub async fn clear(&self) {
        *self.keys.lock().await = None;
    }

    async fn key(
        &self,
        http: &reqwest::Client,
        cfg: &TeamsConfig,
        kid: &str,
    ) -> std::result::Result<DecodingKey, AuthFailure> {
        let mut guard = self.keys.lock().await;
        let ttl = Duration::from_secs(cfg.keys_ttl_secs.max(60));
        let stale = guard.as_ref().is_none_or(|k| k.fetched.elapsed() > ttl);
        let unknown = guard
            .as_ref()
            .is_some_and(|k| !k.by_kid.contains_key(kid) && k.fetched.elapsed() > REFETCH_MIN);
        if stale || unknown {
            match fetch(http, &cfg.openid_config_url).await {
                Ok(by_kid) => {
                    *guard = Some(Keys {
                        by_kid,
                        fetched: Instant::now(),
                    })
                }
                // Keep serving cached keys when a refresh fails; fail only with nothing cached.
                Err(e) if guard.is_none() => {
                    return Err(AuthFailure::KeysUnavailable(e.to_string()));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Bot Framework key refresh failed; using cached keys")
                }
            }
        }
        guard
            .as_ref()
            .and_then(|k| k.by_kid.get(kid).cloned())
            .ok_or_else(|| {
                AuthFailure::Invalid(format!(
                    "token key id `{kid}` is not among the published keys"
                ))
            })
    }
}

fn norm(url: &str) -> &str {
    url.trim_end_matches('/')
}

/// Validates the `Authorization` header for an activity whose `serviceUrl` is given.
pub(crate) async fn authenticate(
    http: &reqwest::Client,
    cfg: &TeamsConfig,
    cache: &KeyCache,
    authorization: Option<&str>,
    service_url: Option<&str>,
) -> std::result::Result<Claims, AuthFailure> {
    let token = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(AuthFailure::Missing)?;
    let header =
        decode_header(token).map_err(|e| AuthFailure::Invalid(format!("malformed token: {e}")))?;
    if header.alg != Algorithm::RS256 {
        return Err(AuthFailure::Invalid(format!(
            "expected an RS256 token, found {:?}",
            header.alg
        )));
    }
    let kid = header
        .kid
        .ok_or_else(|| AuthFailure::Invalid("token has no key id".into()))?;
    let key = cache.key(http, cfg, &kid).await?;
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[cfg.issuer.as_str()]);
    v.set_audience(&[cfg.app_id.as_str()]);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    v.leeway = cfg.clock_skew_secs;
    v.validate_nbf = true;
    let data = decode::<Claims>(token, &key, &v)
        .map_err(|e| AuthFailure::Invalid(format!("token rejected: {e}")))?;
    let Some(service_url) = service_url else {
        return Err(AuthFailure::Invalid(
            "the activity has no serviceUrl".into(),
        ));
    };
    match data.claims.serviceurl.as_deref() {
        Some(claimed) if norm(claimed) == norm(service_url) => Ok(data.claims),
        Some(claimed) => Err(AuthFailure::Invalid(format!(
            "activity serviceUrl {service_url} does not match the token's serviceurl {claimed}"
        ))),
        None => Err(AuthFailure::Invalid("token has no serviceurl claim".into())),
    }
}
