//! Verifying the HTTP signature of an inbound request, the way the big servers sign:
//! draft-cavage (`rsa-sha256` and `hs2019`, both RSA-SHA256 for RSA keys) with a signed
//! `Digest`, and RFC 9421 (`Signature-Input`/`Signature`) with `Content-Digest`. Keys are read
//! as PKCS#8 (SPKI) or PKCS#1 PEM, whatever the whitespace.
//!
//! Pure functions: the caller fetches the signer's key and decides what to do with the result.

use base64::{engine::general_purpose::STANDARD as BASE64, Engine};
use rsa::{pkcs1::DecodeRsaPublicKey, pkcs8::DecodePublicKey, Pkcs1v15Sign, RsaPublicKey};
use sha2::{Digest, Sha256, Sha512};
use std::time::{Duration, SystemTime};

/// How old a signed `Date` may be (Mastodon accepts twelve hours).
const MAX_AGE: Duration = Duration::from_secs(12 * 3600);
/// How far in the future a `Date` may be (clock skew).
const MAX_SKEW: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the request has no HTTP signature (no Signature header); activities must be signed")]
    Missing,
    #[error("the Signature header cannot be read: {0}")]
    Malformed(String),
    #[error("the signature must cover {0}")]
    NotCovered(&'static str),
    #[error("the signed header {0:?} is missing from the request")]
    MissingHeader(String),
    #[error("the Digest header is missing or does not match the body")]
    Digest,
    #[error("the signature has expired or its Date is outside the accepted window")]
    Stale,
    #[error(
        "signature algorithm {0:?} is not supported (use rsa-sha256 or hs2019 with an RSA key)"
    )]
    Algorithm(String),
    #[error("the signer's public key cannot be read: {0}")]
    Key(String),
    #[error("the signature does not verify with the key of {0}")]
    Invalid(String),
}

/// What a request claims about its signature, before the key is known.
#[derive(Debug, Clone)]
pub struct SignedRequest {
    pub key_id: String,
    /// The exact bytes that were signed.
    pub signing_string: String,
    pub signature: Vec<u8>,
    pub algorithm: Option<String>,
}

/// The parts of the request the signature is checked against.
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// Path and query, as received.
    pub path_and_query: &'a str,
    /// `scheme://authority`, for RFC 9421's `@target-uri`.
    pub origin: &'a str,
    /// Lower-cased names; repeated headers joined with ", ".
    pub header: &'a dyn Fn(&str) -> Option<String>,
    pub body: &'a [u8],
    pub now: SystemTime,
}

/// Reads the signature (either standard), checks the body digest and the time window, and
/// builds the string the signer signed.
pub fn parse(req: &RequestParts<'_>) -> Result<SignedRequest, SignatureError> {
    if let (Some(input), Some(signature)) =
        ((req.header)("signature-input"), (req.header)("signature"))
    {
        return parse_rfc9421(req, &input, &signature);
    }
    match (req.header)("signature") {
        Some(sig) => parse_cavage(req, &sig),
        None => match (req.header)("authorization") {
            Some(auth) if auth.to_ascii_lowercase().starts_with("signature ") => {
                parse_cavage(req, &auth["signature ".len()..])
            }
            _ => Err(SignatureError::Missing),
        },
    }
}

/// `key="value",other="value"` (values may also be bare numbers).
fn cavage_params(header: &str) -> Result<Vec<(String, String)>, SignatureError> {
    let mut out = Vec::new();
    let mut rest = header.trim();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| SignatureError::Malformed(format!("expected name=value in {rest:?}")))?;
        let name = name
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted
                .find('"')
                .ok_or_else(|| SignatureError::Malformed("unterminated quoted value".into()))?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (&after[..end], &after[end..])
        };
        out.push((name, value.to_owned()));
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    Ok(out)
}

fn parse_cavage(req: &RequestParts<'_>, header: &str) -> Result<SignedRequest, SignatureError> {
    let params = cavage_params(header)?;
    let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let key_id = get("keyid").ok_or_else(|| SignatureError::Malformed("no keyId".into()))?;
    let signature = BASE64
        .decode(get("signature").ok_or_else(|| SignatureError::Malformed("no signature".into()))?)
        .map_err(|e| SignatureError::Malformed(format!("signature is not base64: {e}")))?;
    let headers: Vec<String> = get("headers")
        .unwrap_or_else(|| "date".into())
        .split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect();
    let covers = |h: &str| headers.iter().any(|x| x == h);
    if !covers("(request-target)") {
        return Err(SignatureError::NotCovered("(request-target)"));
    }
    if !req.body.is_empty() || req.method.eq_ignore_ascii_case("post") {
        if !covers("digest") {
            return Err(SignatureError::NotCovered("the Digest header"));
        }
        check_digest(
            &(req.header)("digest").ok_or(SignatureError::Digest)?,
            req.body,
        )?;
    }
    let created = get("created");
    let expires = get("expires");
    if let Some(exp) = &expires {
        let exp: u64 = exp
            .parse()
            .map_err(|_| SignatureError::Malformed("expires is not a number".into()))?;
        if unix(req.now) > exp {
            return Err(SignatureError::Stale);
        }
    }
    if covers("date") {
        let date =
            (req.header)("date").ok_or_else(|| SignatureError::MissingHeader("date".into()))?;
        check_time(
            httpdate::parse_http_date(&date).map_err(|_| SignatureError::Stale)?,
            req.now,
        )?;
    } else if let Some(c) = &created {
        let c: u64 = c
            .parse()
            .map_err(|_| SignatureError::Malformed("created is not a number".into()))?;
        check_time(SystemTime::UNIX_EPOCH + Duration::from_secs(c), req.now)?;
    } else {
        return Err(SignatureError::NotCovered("the Date header or (created)"));
    }
    let mut lines = Vec::with_capacity(headers.len());
    for h in &headers {
        let value = match h.as_str() {
            "(request-target)" => {
                format!("{} {}", req.method.to_ascii_lowercase(), req.path_and_query)
            }
            "(created)" => created
                .clone()
                .ok_or_else(|| SignatureError::MissingHeader("(created)".into()))?,
            "(expires)" => expires
                .clone()
                .ok_or_else(|| SignatureError::MissingHeader("(expires)".into()))?,
            name => (req.header)(name).ok_or_else(|| SignatureError::MissingHeader(name.into()))?,
        };
        lines.push(format!("{h}: {value}"));
    }
    Ok(SignedRequest {
        key_id,
        signing_string: lines.join("\n"),
        signature,
        algorithm: get("algorithm"),
    })
}

fn parse_rfc9421(
    req: &RequestParts<'_>,
    input: &str,
    signature: &str,
) -> Result<SignedRequest, SignatureError> {
    // One signature, labelled (`sig1=(...)`); with several, the first is used.
    let (label, params) = input
        .split_once('=')
        .ok_or_else(|| SignatureError::Malformed("Signature-Input has no label".into()))?;
    let label = label.trim();
    let params = params.trim();
    let params = params.split(", ").next().unwrap_or(params);
    let sig_value = signature
        .split(',')
        .map(str::trim)
        .find_map(|s| s.strip_prefix(&format!("{label}=")))
        .ok_or_else(|| SignatureError::Malformed(format!("no signature labelled {label}")))?;
    let sig_b64 = sig_value.trim().trim_matches(':');
    let signature = BASE64
        .decode(sig_b64)
        .map_err(|e| SignatureError::Malformed(format!("signature is not base64: {e}")))?;
    let close = params
        .find(')')
        .ok_or_else(|| SignatureError::Malformed("no component list".into()))?;
    let components: Vec<String> = params[..close]
        .trim_start_matches('(')
        .split_whitespace()
        .map(|c| c.trim_matches('"').to_ascii_lowercase())
        .collect();
    let mut key_id = None;
    let mut created = None;
    let mut expires = None;
    let mut alg = None;
    for p in params[close + 1..].split(';').filter(|p| !p.is_empty()) {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        let v = v.trim_matches('"').to_owned();
        match k {
            "keyid" => key_id = Some(v),
            "created" => created = v.parse::<u64>().ok(),
            "expires" => expires = v.parse::<u64>().ok(),
            "alg" => alg = Some(v),
            _ => {}
        }
    }
    let key_id = key_id.ok_or_else(|| SignatureError::Malformed("no keyid".into()))?;
    if let Some(exp) = expires {
        if unix(req.now) > exp {
            return Err(SignatureError::Stale);
        }
    }
    let created = created.ok_or(SignatureError::NotCovered("a created time"))?;
    check_time(
        SystemTime::UNIX_EPOCH + Duration::from_secs(created),
        req.now,
    )?;
    let covers = |c: &str| components.iter().any(|x| x == c);
    if !covers("@method") || !(covers("@target-uri") || covers("@path")) {
        return Err(SignatureError::NotCovered("@method and @target-uri"));
    }
    if !req.body.is_empty() {
        if !covers("content-digest") {
            return Err(SignatureError::NotCovered("the Content-Digest header"));
        }
        check_content_digest(
            &(req.header)("content-digest").ok_or(SignatureError::Digest)?,
            req.body,
        )?;
    }
    let (path, query) = req
        .path_and_query
        .split_once('?')
        .map_or((req.path_and_query, None), |(p, q)| (p, Some(q)));
    let authority = req.origin.split("://").nth(1).unwrap_or_default();
    let mut lines = Vec::new();
    for c in &components {
        let value = match c.as_str() {
            "@method" => req.method.to_ascii_uppercase(),
            "@target-uri" => format!("{}{}", req.origin, req.path_and_query),
            "@authority" => authority.to_ascii_lowercase(),
            "@scheme" => req
                .origin
                .split("://")
                .next()
                .unwrap_or_default()
                .to_owned(),
            "@path" => path.to_owned(),
            "@query" => format!("?{}", query.unwrap_or_default()),
            "@request-target" => req.path_and_query.to_owned(),
            name if name.starts_with('@') => {
                return Err(SignatureError::Malformed(format!(
                    "unsupported component {name}"
                )))
            }
            name => (req.header)(name).ok_or_else(|| SignatureError::MissingHeader(name.into()))?,
        };
        lines.push(format!("\"{c}\": {value}"));
    }
    lines.push(format!("\"@signature-params\": {params}"));
    Ok(SignedRequest {
        key_id,
        signing_string: lines.join("\n"),
        signature,
        algorithm: alg,
    })
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn check_time(signed_at: SystemTime, now: SystemTime) -> Result<(), SignatureError> {
    match now.duration_since(signed_at) {
        Ok(age) if age > MAX_AGE => Err(SignatureError::Stale),
        Ok(_) => Ok(()),
        Err(ahead) if ahead.duration() > MAX_SKEW => Err(SignatureError::Stale),
        Err(_) => Ok(()),
    }
}

/// `Digest: SHA-256=base64` (several, comma-separated, all checked).
fn check_digest(header: &str, body: &[u8]) -> Result<(), SignatureError> {
    let mut checked = false;
    for part in header.split(',') {
        let Some((alg, value)) = part.trim().split_once('=') else {
            continue;
        };
        let expected = match alg.to_ascii_lowercase().as_str() {
            "sha-256" => BASE64.encode(Sha256::digest(body)),
            "sha-512" => BASE64.encode(Sha512::digest(body)),
            _ => continue,
        };
        if expected != value.trim() {
            return Err(SignatureError::Digest);
        }
        checked = true;
    }
    checked.then_some(()).ok_or(SignatureError::Digest)
}

/// RFC 9530 `Content-Digest: sha-256=:base64:`.
fn check_content_digest(header: &str, body: &[u8]) -> Result<(), SignatureError> {
    let mut checked = false;
    for part in header.split(',') {
        let Some((alg, value)) = part.trim().split_once('=') else {
            continue;
        };
        let value = value.trim().trim_matches(':');
        let expected = match alg.trim().to_ascii_lowercase().as_str() {
            "sha-256" => BASE64.encode(Sha256::digest(body)),
            "sha-512" => BASE64.encode(Sha512::digest(body)),
            _ => continue,
        };
        if expected != value {
            return Err(SignatureError::Digest);
        }
        checked = true;
    }
    checked.then_some(()).ok_or(SignatureError::Digest)
}

/// A public key PEM as servers publish it: PKCS#8 (`PUBLIC KEY`) or PKCS#1
/// (`RSA PUBLIC KEY`), with newlines, spaces instead of newlines, or trailing blank lines.
pub fn read_public_key(pem: &str) -> Result<RsaPublicKey, SignatureError> {
    let pem = pem.trim();
    let pkcs1 = pem.contains("BEGIN RSA PUBLIC KEY");
    let body: String = pem
        .replace("-----BEGIN RSA PUBLIC KEY-----", "")
        .replace("-----END RSA PUBLIC KEY-----", "")
        .replace("-----BEGIN PUBLIC KEY-----", "")
        .replace("-----END PUBLIC KEY-----", "")
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = BASE64
        .decode(body)
        .map_err(|e| SignatureError::Key(format!("not base64: {e}")))?;
    let parsed = if pkcs1 {
        RsaPublicKey::from_pkcs1_der(&der).map_err(|e| e.to_string())
    } else {
        RsaPublicKey::from_public_key_der(&der)
            .map_err(|e| e.to_string())
            .or_else(|e| RsaPublicKey::from_pkcs1_der(&der).map_err(|_| e))
    };
    parsed.map_err(SignatureError::Key)
}

/// Checks `signed` against the signer's PEM. `rsa-sha256`, `hs2019` and RFC 9421's
/// `rsa-v1_5-sha256` are all RSASSA-PKCS1-v1_5 with SHA-256 for an RSA key.
pub fn verify(signed: &SignedRequest, public_key_pem: &str) -> Result<(), SignatureError> {
    match signed
        .algorithm
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("rsa-sha256") | Some("hs2019") | Some("rsa-v1_5-sha256") => {}
        Some(other) => return Err(SignatureError::Algorithm(other.to_owned())),
    }
    let key = read_public_key(public_key_pem)?;
    key.verify(
        Pkcs1v15Sign::new::<Sha256>(),
        &Sha256::digest(signed.signing_string.as_bytes()),
        &signed.signature,
    )
    .map_err(|_| SignatureError::Invalid(signed.key_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::federation::signing::{parse_pkcs8_pem, signed_headers};
    use rsa::pkcs1::{EncodeRsaPublicKey, LineEnding};
    use std::collections::HashMap;

    struct Fixture {
        public_pem: String,
        private: aws_lc_rs::rsa::KeyPair,
    }

    fn keys() -> Fixture {
        let kp = activitypub_federation::http_signatures::generate_actor_keypair().expect("keys");
        Fixture {
            private: parse_pkcs8_pem(&kp.private_key).expect("private"),
            public_pem: kp.public_key,
        }
    }

    fn check(
        headers: &HashMap<String, String>,
        path: &str,
        body: &[u8],
        now: SystemTime,
    ) -> Result<SignedRequest, SignatureError> {
        let lookup = |name: &str| headers.get(name).cloned();
        parse(&RequestParts {
            method: "POST",
            path_and_query: path,
            origin: "https://n.example",
            header: &lookup,
            body,
            now,
        })
    }

    fn cavage(f: &Fixture, path: &str, body: &[u8]) -> HashMap<String, String> {
        let inbox: url::Url = format!("https://n.example{path}").parse().expect("url");
        signed_headers(&f.private, "https://s.example/u/a#main-key", &inbox, body)
            .expect("sign")
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().expect("text").to_owned()))
            .collect()
    }

    #[test]
    fn cavage_signatures_verify_and_tampering_does_not() {
        let f = keys();
        let body = br#"{"type":"Create"}"#;
        let headers = cavage(&f, "/inbox?page=1", body);
        let signed = check(&headers, "/inbox?page=1", body, SystemTime::now()).expect("parse");
        verify(&signed, &f.public_pem).expect("verifies");

        // The query string is part of (request-target).
        let signed = check(&headers, "/inbox", body, SystemTime::now()).expect("parse");
        assert!(matches!(
            verify(&signed, &f.public_pem),
            Err(SignatureError::Invalid(_))
        ));
        // A changed body no longer matches its Digest.
        assert_eq!(
            check(&headers, "/inbox?page=1", b"{}", SystemTime::now()).err(),
            Some(SignatureError::Digest)
        );
        // Another actor's key does not verify.
        let other = keys();
        let signed = check(&headers, "/inbox?page=1", body, SystemTime::now()).expect("parse");
        assert!(verify(&signed, &other.public_pem).is_err());
        // A day-old Date is refused.
        let later = SystemTime::now() + Duration::from_secs(24 * 3600);
        assert_eq!(
            check(&headers, "/inbox?page=1", body, later).err(),
            Some(SignatureError::Stale)
        );
        // No signature at all.
        assert_eq!(
            check(&HashMap::new(), "/inbox", body, SystemTime::now()).err(),
            Some(SignatureError::Missing)
        );
    }

    #[test]
    fn hs2019_label_and_unsigned_digest_rules() {
        let f = keys();
        let body = b"{}";
        let mut headers = cavage(&f, "/inbox", body);
        let sig = headers["signature"].replace("rsa-sha256", "hs2019");
        headers.insert("signature".into(), sig);
        let signed = check(&headers, "/inbox", body, SystemTime::now()).expect("parse");
        verify(&signed, &f.public_pem).expect("hs2019 is RSA-SHA256 for an RSA key");

        let no_digest = headers["signature"].replace(" digest", "");
        headers.insert("signature".into(), no_digest);
        assert_eq!(
            check(&headers, "/inbox", body, SystemTime::now()).err(),
            Some(SignatureError::NotCovered("the Digest header"))
        );
    }

    #[test]
    fn public_keys_in_every_shape_servers_publish() {
        let f = keys();
        let key = read_public_key(&f.public_pem).expect("spki");
        // Spaces for newlines, and a trailing blank line.
        let spaced = f.public_pem.replace('\n', " ") + "\n\n";
        assert_eq!(read_public_key(&spaced).expect("spaced"), key);
        let pkcs1 = key.to_pkcs1_pem(LineEnding::LF).expect("pkcs1");
        assert_eq!(read_public_key(&pkcs1).expect("pkcs1"), key);
        assert!(read_public_key("-----BEGIN PUBLIC KEY-----\nnot a key\n").is_err());
    }

    #[test]
    fn rfc9421_signatures_verify() {
        let f = keys();
        let body = br#"{"type":"Follow"}"#;
        let created = unix(SystemTime::now());
        let content_digest = format!("sha-256=:{}:", BASE64.encode(Sha256::digest(body)));
        let params = format!(
            "(\"@method\" \"@target-uri\" \"content-digest\");created={created};keyid=\"https://f.example/u/a#main-key\";alg=\"rsa-v1_5-sha256\""
        );
        let base = format!(
            "\"@method\": POST\n\"@target-uri\": https://n.example/c/hwb/inbox\n\"content-digest\": {content_digest}\n\"@signature-params\": {params}"
        );
        let mut sig = vec![0u8; f.private.public_modulus_len()];
        f.private
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                base.as_bytes(),
                &mut sig,
            )
            .expect("sign");
        let headers: HashMap<String, String> = [
            ("signature-input".to_string(), format!("sig1={params}")),
            (
                "signature".to_string(),
                format!("sig1=:{}:", BASE64.encode(&sig)),
            ),
            ("content-digest".to_string(), content_digest),
        ]
        .into_iter()
        .collect();
        let signed = check(&headers, "/c/hwb/inbox", body, SystemTime::now()).expect("parse");
        assert_eq!(signed.key_id, "https://f.example/u/a#main-key");
        verify(&signed, &f.public_pem).expect("verifies");
        assert_eq!(
            check(&headers, "/c/hwb/inbox", b"{}", SystemTime::now()).err(),
            Some(SignatureError::Digest)
        );
    }
}
