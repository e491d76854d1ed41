//! Signing outgoing deliveries (draft-cavage HTTP signatures, `rsa-sha256`, with a `Digest`),
//! the way Mastodon signs and verifies them.
//!
//! The federation crate signs with the pure-Rust `rsa` crate, which spends most of a fan-out's
//! CPU in big-number arithmetic; aws-lc (already linked for TLS) signs several times faster, so
//! deliveries are signed here. Incoming signatures are still verified by the crate.

use aws_lc_rs::{rand::SystemRandom, rsa::KeyPair, signature::RSA_PKCS1_SHA256};
use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::SystemTime,
};
use url::Url;

/// Parsed private keys of local actors, by actor row id.
#[derive(Default)]
pub struct KeyCache(Mutex<HashMap<i64, Arc<KeyPair>>>);

impl KeyCache {
    pub fn get_or_parse(&self, actor_id: i64, pem: &str) -> Result<Arc<KeyPair>, String> {
        if let Some(k) = self.0.lock().map_err(|e| e.to_string())?.get(&actor_id) {
            return Ok(k.clone());
        }
        let key = Arc::new(parse_pkcs8_pem(pem)?);
        self.0
            .lock()
            .map_err(|e| e.to_string())?
            .insert(actor_id, key.clone());
        Ok(key)
    }
}

/// Reads a `-----BEGIN PRIVATE KEY-----` (PKCS#8) PEM.
pub fn parse_pkcs8_pem(pem: &str) -> Result<KeyPair, String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    let der = BASE64
        .decode(body)
        .map_err(|e| format!("private key is not base64: {e}"))?;
    KeyPair::from_pkcs8(&der).map_err(|e| format!("private key is not PKCS#8 RSA: {e}"))
}

/// The headers of a signed POST of `body` to `inbox`: Host, Date, Digest, Content-Type and
/// Signature over `(request-target) host date digest content-type`.
pub fn signed_headers(
    key: &KeyPair,
    key_id: &str,
    inbox: &Url,
    body: &[u8],
) -> Result<HeaderMap, String> {
    let host = match inbox.port() {
        Some(p) => format!("{}:{p}", inbox.host_str().unwrap_or_default()),
        None => inbox.host_str().unwrap_or_default().to_owned(),
    };
    let target = match inbox.query() {
        Some(q) => format!("{}?{q}", inbox.path()),
        None => inbox.path().to_owned(),
    };
    let date = httpdate::fmt_http_date(SystemTime::now());
    let digest = format!("SHA-256={}", BASE64.encode(Sha256::digest(body)));
    let content_type = crate::federation::CONTENT_TYPE;
    let signing_string = format!(
        "(request-target): post {target}\nhost: {host}\ndate: {date}\ndigest: {digest}\ncontent-type: {content_type}"
    );
    let mut signature = vec![0u8; key.public_modulus_len()];
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_string.as_bytes(),
        &mut signature,
    )
    .map_err(|e| format!("signing failed: {e}"))?;
    let signature_header = format!(
        "keyId=\"{key_id}\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date digest content-type\",signature=\"{}\"",
        BASE64.encode(&signature)
    );
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("host", host),
        ("date", date),
        ("digest", digest),
        ("content-type", content_type.to_owned()),
        ("signature", signature_header),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_str(&value).map_err(|e| format!("header {name}: {e}"))?,
        );
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::signature::{UnparsedPublicKey, RSA_PKCS1_2048_8192_SHA256};

    #[test]
    fn signatures_verify_with_the_public_key() {
        let keypair =
            activitypub_federation::http_signatures::generate_actor_keypair().expect("keypair");
        let key = parse_pkcs8_pem(&keypair.private_key).expect("parse");
        let inbox: Url = "https://n.example:8443/inbox?x=1".parse().expect("url");
        let headers =
            signed_headers(&key, "https://s.example/c/hwb#main-key", &inbox, b"{}").expect("sign");
        let sig = headers["signature"].to_str().expect("text");
        assert!(sig.contains("algorithm=\"rsa-sha256\""), "{sig}");
        let b64 = sig
            .rsplit("signature=\"")
            .next()
            .and_then(|s| s.strip_suffix('"'))
            .expect("signature value");
        let raw = BASE64.decode(b64).expect("base64");
        let signing_string = format!(
            "(request-target): post /inbox?x=1\nhost: n.example:8443\ndate: {}\ndigest: {}\ncontent-type: {}",
            headers["date"].to_str().expect("date"),
            headers["digest"].to_str().expect("digest"),
            crate::federation::CONTENT_TYPE
        );
        use aws_lc_rs::signature::KeyPair as _;
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key.public_key().as_ref());
        public
            .verify(signing_string.as_bytes(), &raw)
            .expect("the signature verifies");
        assert_eq!(
            headers["digest"].to_str().expect("digest"),
            "SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
        );
    }
}
