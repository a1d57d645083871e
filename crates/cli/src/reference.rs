//! Image references the way docker's `distribution/reference` normalizes
//! them: `busybox` is `docker.io/library/busybox`, printed back in the short
//! ("familiar") form, with `:latest` added when no tag or digest is given.

use std::fmt;

const DEFAULT_DOMAIN: &str = "docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// Registry host, e.g. "docker.io" or "localhost:5000".
    pub domain: String,
    /// Repository path, e.g. "library/busybox".
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Invalid,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
}

impl Reference {
    /// `ParseNormalizedNamed`.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Invalid);
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                let (algo, hex) = d.split_once(':').ok_or(ReferenceError::Invalid)?;
                if algo.is_empty() || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit())
                {
                    return Err(ReferenceError::Invalid);
                }
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        let (name, tag) = match rest.rfind(':') {
            Some(i) if !rest[i..].contains('/') => (&rest[..i], Some(rest[i + 1..].to_string())),
            _ => (rest, None),
        };
        if let Some(t) = &tag {
            let valid = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !valid {
                return Err(ReferenceError::Invalid);
            }
        }
        let (domain, path) = split_domain(name);
        if path.is_empty() {
            return Err(ReferenceError::Invalid);
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(path));
        }
        for component in path.split('/') {
            if !valid_component(component) {
                return Err(ReferenceError::Invalid);
            }
        }
        Ok(Reference {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// The full repository name ("docker.io/library/busybox").
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short repository name ("busybox").
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

    /// The short form with tag and digest ("busybox:latest").
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }

    /// `TagNameOnly`: adds `:latest` when neither tag nor digest is present.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".to_string());
        }
        self
    }
}

impl fmt::Display for Reference {
    /// The fully qualified form ("docker.io/library/busybox:latest").
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

fn split_domain(name: &str) -> (String, String) {
    match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_string(), rest.to_string())
        }
        Some(_) => (DEFAULT_DOMAIN.to_string(), name.to_string()),
        None => (
            DEFAULT_DOMAIN.to_string(),
            format!("{OFFICIAL_REPO_PREFIX}{name}"),
        ),
    }
}

/// A path component: lowercase alphanumerics joined by `.`, `_`, `__` or `-`s.
fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !b[0].is_ascii_alphanumeric() || !b[b.len() - 1].is_ascii_alphanumeric() {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_alphanumeric() {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !b[i].is_ascii_alphanumeric() {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        let r = Reference::parse("busybox").expect("valid");
        assert_eq!(r.to_string(), "docker.io/library/busybox");
        assert_eq!(r.familiar_name(), "busybox");
        let r = r.with_default_tag();
        assert_eq!(r.familiar_string(), "busybox:latest");
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");

        let r = Reference::parse("localhost:5000/team/app:v1.2").expect("valid");
        assert_eq!(
            (r.domain.as_str(), r.path.as_str(), r.tag.as_deref()),
            ("localhost:5000", "team/app", Some("v1.2"))
        );
        assert_eq!(r.familiar_string(), "localhost:5000/team/app:v1.2");

        let r = Reference::parse("user/app").expect("valid");
        assert_eq!(r.familiar_name(), "user/app");
        assert_eq!(r.name(), "docker.io/user/app");

        let d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        let r = Reference::parse(&format!("busybox@{d}")).expect("valid");
        assert_eq!(r.digest.as_deref(), Some(d));
        assert_eq!(r.clone().with_default_tag().tag, None);
    }

    #[test]
    fn rejects() {
        assert_eq!(Reference::parse(""), Err(ReferenceError::Invalid));
        assert_eq!(
            Reference::parse("Busybox"),
            Err(ReferenceError::Uppercase("library/Busybox".into()))
        );
        assert_eq!(Reference::parse("a:b:c"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("a/-b"), Err(ReferenceError::Invalid));
        assert_eq!(Reference::parse("busybox:"), Err(ReferenceError::Invalid));
        assert_eq!(
            Reference::parse("busybox@sha256:xyz"),
            Err(ReferenceError::Invalid)
        );
    }
}
