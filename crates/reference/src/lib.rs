//! Docker image references and content digests, parsed and normalised as Docker's
//! `github.com/distribution/reference` does (`ParseNormalizedNamed`, `FamiliarName`,
//! `TagNameOnly`): `busybox` is `docker.io/library/busybox`, `localhost:5000/a` keeps its
//! registry, and a name is lowercase.
//!
//! Written by hand: the grammar is small, and the crates that implement it either follow
//! containerd's slightly different normalisation or are unmaintained.

use std::fmt;
use std::io;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
pub const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NameNotCanonical(String),
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than {NAME_TOTAL_LENGTH_MAX} characters")]
    NameTooLong,
    #[error("invalid tag format")]
    InvalidTag,
    #[error("invalid checksum digest format")]
    InvalidDigest,
    #[error("unsupported digest algorithm")]
    UnsupportedDigest,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    IdAsName(String),
}

/// A content digest, `algorithm:hex`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: String,
    hex: String,
}

impl Digest {
    pub fn parse(s: &str) -> Result<Digest, ReferenceError> {
        let (algorithm, hex) = s.split_once(':').ok_or(ReferenceError::InvalidDigest)?;
        let len = match algorithm {
            "sha256" => 64,
            "sha384" => 96,
            "sha512" => 128,
            a if !a.is_empty()
                && a.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b)
                }) =>
            {
                return Err(ReferenceError::UnsupportedDigest)
            }
            _ => return Err(ReferenceError::InvalidDigest),
        };
        if hex.len() != len
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(ReferenceError::InvalidDigest);
        }
        Ok(Digest {
            algorithm: algorithm.to_string(),
            hex: hex.to_string(),
        })
    }

    pub fn sha256_of(bytes: &[u8]) -> Digest {
        Digest {
            algorithm: "sha256".into(),
            hex: hex::encode(Sha256::digest(bytes)),
        }
    }

    pub fn from_sha256_hex(hex: &str) -> Result<Digest, ReferenceError> {
        Digest::parse(&format!("sha256:{hex}"))
    }

    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    pub fn hex(&self) -> &str {
        &self.hex
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Digest::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Hashes everything written through it.
#[derive(Default, Clone)]
pub struct Sha256Writer {
    hasher: Sha256,
    written: u64,
}

impl Sha256Writer {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// The digest of what was written so far, without ending the hash.
    pub fn peek(&self) -> Digest {
        self.clone().finish().0
    }

    pub fn finish(self) -> (Digest, u64) {
        (
            Digest {
                algorithm: "sha256".into(),
                hex: hex::encode(self.hasher.finalize()),
            },
            self.written,
        )
    }
}

impl io::Write for Sha256Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.written += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A normalised, named image reference: domain, path, optional tag and digest.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__", or one or more "-".
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// A registry host: DNS-ish labels (letters allowed in either case), optional `:port`, or an
/// IPv6 address in brackets.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => {
                if ip.is_empty()
                    || !ip
                        .bytes()
                        .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
                {
                    return false;
                }
                (
                    None,
                    tail.strip_prefix(':')
                        .map(Some)
                        .unwrap_or(if tail.is_empty() { None } else { Some("x") }),
                )
            }
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        None => true,
        Some(h) => {
            !h.is_empty()
                && h.split('.').all(|label| {
                    let b = label.as_bytes();
                    !b.is_empty()
                        && b[0].is_ascii_alphanumeric()
                        && b[b.len() - 1].is_ascii_alphanumeric()
                        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
                })
        }
    }
}

/// `[\w][\w.-]{0,127}`
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let b = tag.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    if b.is_empty()
        || b.len() > 128
        || !word(b[0])
        || !b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
    {
        return Err(ReferenceError::InvalidTag);
    }
    Ok(())
}

/// 64 lowercase hex characters: an image or container ID.
pub fn is_full_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 1 to 64 lowercase hex characters.
pub fn is_id_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Reference {
    /// Docker's `ParseNormalizedNamed`.
    pub fn parse_normalized(s: &str) -> Result<Reference, ReferenceError> {
        if is_full_id(s) {
            return Err(ReferenceError::IdAsName(s.to_string()));
        }
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        // Split off the digest, then the tag (a ':' after the last '/').
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (r, Some(Digest::parse(d)?)),
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i + 1..].contains('/') => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        if let Some(t) = tag {
            validate_tag(t).map_err(|_| ReferenceError::InvalidFormat)?;
        }
        if name.is_empty() {
            return Err(ReferenceError::InvalidFormat);
        }
        // Domain: the first component when it looks like a host (has '.' or ':', is
        // "localhost", or has uppercase letters, which paths cannot).
        let (domain, path) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.')
                    || first.contains(':')
                    || first == "localhost"
                    || first.bytes().any(|b| b.is_ascii_uppercase()) =>
            {
                (first.to_string(), rest.to_string())
            }
            _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        };
        let domain = if domain == LEGACY_DEFAULT_DOMAIN {
            DEFAULT_DOMAIN.to_string()
        } else {
            domain
        };
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::NameNotCanonical(path));
        }
        if !valid_domain(&domain) {
            return Err(ReferenceError::InvalidFormat);
        }
        let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
            format!("{OFFICIAL_REPO_PREFIX}{path}")
        } else {
            path
        };
        if path.is_empty() || !path.split('/').all(valid_path_component) {
            return Err(ReferenceError::InvalidFormat);
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        Ok(Reference {
            domain,
            path,
            tag: tag.map(String::from),
            digest,
        })
    }

    /// Docker's `ParseDockerRef`: normalised, with `latest` when neither tag nor digest is given;
    /// a digest wins over a tag.
    pub fn parse_docker_ref(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse_normalized(s)?;
        if r.digest.is_some() {
            r.tag = None;
            return Ok(r);
        }
        Ok(r.with_default_tag())
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// `docker.io/library/busybox`
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// `busybox`, `me/bb`, `localhost:5000/x`
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_REPO_PREFIX)
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_string()
        } else {
            self.name()
        }
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(tag)?;
        Ok(Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: Some(tag.to_string()),
            digest: None,
        })
    }

    /// Docker's `TagNameOnly`: adds `latest` when there is neither tag nor digest.
    pub fn with_default_tag(self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            Reference {
                tag: Some(DEFAULT_TAG.to_string()),
                ..self
            }
        } else {
            self
        }
    }

    fn suffix(&self) -> String {
        let mut s = String::new();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }

    /// `busybox:latest`, `me/bb:1`, `busybox@sha256:…`
    pub fn familiar_string(&self) -> String {
        format!("{}{}", self.familiar_name(), self.suffix())
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name(), self.suffix())
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse_normalized(s)
    }
}

impl Serialize for Reference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Reference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Reference::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

    #[test]
    fn normalisation_table() {
        // input, full string, familiar string
        let ok: &[(&str, &str, &str)] = &[
            ("busybox", "docker.io/library/busybox", "busybox"),
            (
                "busybox:latest",
                "docker.io/library/busybox:latest",
                "busybox:latest",
            ),
            ("library/busybox", "docker.io/library/busybox", "busybox"),
            ("docker.io/busybox", "docker.io/library/busybox", "busybox"),
            (
                "index.docker.io/busybox",
                "docker.io/library/busybox",
                "busybox",
            ),
            ("me/bb:1", "docker.io/me/bb:1", "me/bb:1"),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b",
                "library/a/b",
            ),
            ("localhost/x", "localhost/x", "localhost/x"),
            (
                "localhost:5000/a/b:tag",
                "localhost:5000/a/b:tag",
                "localhost:5000/a/b:tag",
            ),
            (
                "127.0.0.1:5443/me/bb:1.0",
                "127.0.0.1:5443/me/bb:1.0",
                "127.0.0.1:5443/me/bb:1.0",
            ),
            ("[::1]:5000/x", "[::1]:5000/x", "[::1]:5000/x"),
            ("Example.COM/x", "Example.COM/x", "Example.COM/x"),
            (
                "x/a__b.c-d---e_f",
                "docker.io/x/a__b.c-d---e_f",
                "x/a__b.c-d---e_f",
            ),
        ];
        for (input, full, familiar) in ok {
            let r = Reference::parse_normalized(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), *full, "{input}");
            assert_eq!(r.familiar_string(), *familiar, "{input}");
        }
        let with_digest = Reference::parse_normalized(&format!("ubuntu@{D}")).expect("digest");
        assert_eq!(
            with_digest.to_string(),
            format!("docker.io/library/ubuntu@{D}")
        );
        assert_eq!(with_digest.familiar_string(), format!("ubuntu@{D}"));
        let both = Reference::parse_normalized(&format!("a:1@{D}")).expect("both");
        assert_eq!(both.tag(), Some("1"));
        assert!(Reference::parse_docker_ref(&format!("a:1@{D}"))
            .expect("ref")
            .tag()
            .is_none());
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            ":",
            "a:",
            "@",
            "Busybox",
            "a/B",
            "-a",
            "a-",
            "a..b",
            "a___b",
            "a/",
            "/a",
            "a//b",
            "a:b:c",
            "a@sha256:abc",
            "localhost:port/x",
            "a:tag with space",
            &"f".repeat(64),
        ] {
            assert!(
                Reference::parse_normalized(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        assert_eq!(
            Reference::parse_normalized("Busybox").map_err(|e| e.to_string()),
            Err("invalid reference format: repository name (Busybox) must be lowercase".into())
        );
        assert!(Reference::parse_normalized(&format!("{}/x", "a".repeat(260))).is_err());
    }

    #[test]
    fn tags_defaults_and_digests() {
        let r = Reference::parse_normalized("busybox")
            .expect("ref")
            .with_default_tag();
        assert_eq!(r.tag(), Some("latest"));
        assert_eq!(r.name(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(
            r.with_tag("1.36").expect("tag").familiar_string(),
            "busybox:1.36"
        );
        assert!(r.with_tag("-bad").is_err());
        assert!(validate_tag(&"a".repeat(128)).is_ok());
        assert!(validate_tag(&"a".repeat(129)).is_err());
        let d = Digest::sha256_of(b"");
        assert_eq!(
            d.to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(Digest::parse(&d.to_string()), Ok(d.clone()));
        assert!(Digest::parse("sha256:XYZ").is_err());
        assert!(Digest::parse("md5:abc").is_err());
        let mut w = Sha256Writer::new();
        io::Write::write_all(&mut w, b"").expect("write");
        assert_eq!(w.finish(), (d, 0));
        assert!(is_full_id(&"a".repeat(64)) && !is_full_id("abc"));
        assert!(is_id_prefix("abc") && !is_id_prefix("xyz") && !is_id_prefix(""));
        let json = serde_json::to_string(&r).expect("json");
        assert_eq!(json, "\"docker.io/library/busybox:latest\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).expect("back"), r);
    }
}
