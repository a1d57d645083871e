//! Platforms (`linux/arm64/v8`) normalised like containerd's `platforms` package, and the
//! choice of a manifest from an image index / manifest list.

use std::fmt;

use oci_spec::image::{Descriptor, ImageIndex};

use crate::error::Error;

/// An OS/architecture/variant triple, always normalised (see [`Platform::normalize`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// Builds a normalised platform.
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(String::from),
        }
        .normalize()
    }

    /// The platform this process runs on. 32-bit ARM is assumed to be v7: the CPU variant is
    /// not known at compile time and v7 is what nearly all armhf hosts are.
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", Some("v8")),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "loongarch64" => ("loong64", None),
            other => (other, None),
        };
        Platform::new("linux", arch, variant)
    }

    /// Parses `os[/arch[/variant]]`, or a bare architecture (`arm64`) meaning that architecture
    /// on Linux, as containerd's `platforms.Parse` does.
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let bad = || {
            Error::invalid(format!(
                "\"{s}\": unknown operating system or architecture: invalid argument"
            ))
        };
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| {
            !p.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                || !p
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        }) {
            return Err(bad());
        }
        match parts.as_slice() {
            [one] => {
                let one = one.to_ascii_lowercase();
                if KNOWN_OS.contains(&one.as_str()) {
                    let host = Platform::host();
                    if one == host.os {
                        return Ok(host);
                    }
                    Ok(Platform::new(&one, &host.architecture, None))
                } else if is_known_arch(&one) {
                    Ok(Platform::new("linux", &one, None))
                } else {
                    Err(bad())
                }
            }
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(bad()),
        }
    }

    /// containerd's `Normalize`: lowercase, `x86_64`→`amd64`, `aarch64`→`arm64`, numeric
    /// variants get a `v`, 32-bit ARM defaults to v7 and arm64 to v8.
    pub fn normalize(self) -> Platform {
        let os = match self.os.to_ascii_lowercase().as_str() {
            "macos" => "darwin".to_string(),
            o => o.to_string(),
        };
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.map(|v| v.to_ascii_lowercase());
        let (arch, variant) = match arch.as_str() {
            "i386" => ("386".to_string(), None),
            "x86_64" | "x86-64" | "amd64" => (
                "amd64".to_string(),
                // v1 is the baseline: containerd drops it so it compares equal to none.
                variant.filter(|v| v != "v1" && v != "1").map(vprefix),
            ),
            "aarch64" | "arm64" => (
                "arm64".to_string(),
                Some(match variant.as_deref() {
                    None | Some("8") | Some("v8") | Some("v8.0") => "v8".to_string(),
                    Some(v) => vprefix(v.to_string()),
                }),
            ),
            "armhf" => ("arm".to_string(), Some("v7".to_string())),
            "armel" => ("arm".to_string(), Some("v6".to_string())),
            "arm" => (
                "arm".to_string(),
                Some(variant.map(vprefix).unwrap_or_else(|| "v7".to_string())),
            ),
            _ => (arch, variant),
        };
        Platform {
            os,
            architecture: arch,
            variant,
        }
    }

    /// How well an index entry's platform serves this one: `None` if it cannot run here,
    /// lower is better (0 = exact). Older ARM variants run on newer CPUs, as do lower amd64
    /// micro-architecture levels.
    fn rank(&self, other: &Platform) -> Option<u32> {
        if self.os != other.os || self.architecture != other.architecture {
            return None;
        }
        if self.variant == other.variant {
            return Some(0);
        }
        match self.architecture.as_str() {
            "arm" | "amd64" => {
                let level = |v: &Option<String>| -> Option<u32> {
                    match v {
                        None => Some(if self.architecture == "amd64" { 1 } else { 0 }),
                        Some(v) => v.strip_prefix('v')?.parse().ok(),
                    }
                };
                let want = level(&self.variant)?;
                let have = level(&other.variant)?;
                (have <= want).then(|| want - have)
            }
            _ => None,
        }
    }
}

fn vprefix(v: String) -> String {
    if v.bytes().next().is_some_and(|b| b.is_ascii_digit()) {
        format!("v{v}")
    } else {
        v
    }
}

const KNOWN_OS: &[&str] = &[
    "aix",
    "android",
    "darwin",
    "dragonfly",
    "freebsd",
    "hurd",
    "illumos",
    "ios",
    "js",
    "linux",
    "nacl",
    "netbsd",
    "openbsd",
    "plan9",
    "solaris",
    "wasip1",
    "windows",
    "zos",
];

fn is_known_arch(a: &str) -> bool {
    matches!(
        a,
        "386"
            | "i386"
            | "amd64"
            | "x86_64"
            | "x86-64"
            | "arm"
            | "armhf"
            | "armel"
            | "arm64"
            | "aarch64"
            | "ppc64"
            | "ppc64le"
            | "s390x"
            | "riscv64"
            | "mips"
            | "mipsle"
            | "mips64"
            | "mips64le"
            | "loong64"
            | "wasm"
    )
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// Picks the manifest for `want` from an OCI image index or Docker manifest list. Entries
/// without a platform (e.g. attestations in some indexes) are skipped; among matches, the exact
/// variant wins over compatible older ones, then the first listed.
pub fn select_platform(index_bytes: &[u8], want: &Platform) -> Result<Descriptor, Error> {
    let index: ImageIndex = serde_json::from_slice(index_bytes)
        .map_err(|e| Error::invalid(format!("invalid image index: {e}")))?;
    let want = want.clone().normalize();
    let mut best: Option<(u32, &Descriptor)> = None;
    for d in index.manifests() {
        let Some(p) = d.platform() else { continue };
        let have = Platform::new(
            &p.os().to_string(),
            &p.architecture().to_string(),
            p.variant().as_deref(),
        );
        if let Some(r) = want.rank(&have) {
            if best.is_none_or(|(b, _)| r < b) {
                best = Some((r, d));
            }
        }
    }
    match best {
        Some((_, d)) => Ok(d.clone()),
        None => Err(Error::not_found(format!(
            "no matching manifest for {want} in the manifest list entries"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn normalisation() {
        assert_eq!(
            Platform::new("Linux", "x86_64", None).to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::new("linux", "amd64", Some("v1")).to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::new("linux", "aarch64", None).to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::new("linux", "arm64", Some("8")).to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(
            Platform::new("linux", "armhf", None).to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::new("linux", "armel", None).to_string(),
            "linux/arm/v6"
        );
        assert_eq!(
            Platform::new("linux", "arm", Some("6")).to_string(),
            "linux/arm/v6"
        );
        assert_eq!(
            Platform::new("linux", "arm", None).to_string(),
            "linux/arm/v7"
        );
        assert_eq!(
            Platform::new("linux", "i386", None).to_string(),
            "linux/386"
        );
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
        }
    }

    #[test]
    fn parsing() {
        assert_eq!(
            Platform::parse("linux/arm64/v8").unwrap(),
            Platform::new("linux", "arm64", None)
        );
        assert_eq!(
            Platform::parse("linux/amd64").unwrap().to_string(),
            "linux/amd64"
        );
        assert_eq!(
            Platform::parse("arm64").unwrap().to_string(),
            "linux/arm64/v8"
        );
        assert_eq!(Platform::parse("linux").unwrap(), Platform::host());
        assert_eq!(Platform::parse("windows").unwrap().os, "windows");
        for bad in ["", "linux/", "a/b/c/d", "bogus", "linux/amd64/v2 ", "../x"] {
            assert!(Platform::parse(bad).is_err(), "{bad}");
        }
    }

    fn index(entries: &[(&str, &str, Option<&str>)]) -> Vec<u8> {
        let manifests: Vec<serde_json::Value> = entries
            .iter()
            .enumerate()
            .map(|(i, (os, arch, variant))| {
                let mut p = serde_json::json!({"os": os, "architecture": arch});
                if let Some(v) = variant {
                    p["variant"] = serde_json::json!(v);
                }
                serde_json::json!({
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "digest": format!("sha256:{:064x}", i + 1),
                    "size": 100,
                    "platform": p,
                })
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests,
        }))
        .unwrap()
    }

    fn pick(idx: &[u8], want: &str) -> Result<String, Error> {
        select_platform(idx, &Platform::parse(want).unwrap()).map(|d| d.digest().to_string())
    }

    fn nth(i: u32) -> String {
        format!("sha256:{i:064x}")
    }

    #[test]
    fn selection() {
        let idx = index(&[
            ("linux", "amd64", None),
            ("linux", "arm", Some("v6")),
            ("linux", "arm", Some("v7")),
            ("linux", "arm64", Some("v8")),
            ("unknown", "unknown", None),
            ("linux", "s390x", None),
        ]);
        assert_eq!(pick(&idx, "linux/amd64").unwrap(), nth(1));
        assert_eq!(pick(&idx, "linux/arm/v7").unwrap(), nth(3));
        assert_eq!(pick(&idx, "linux/arm/v6").unwrap(), nth(2));
        // v8 32-bit runs v7 binaries: the best compatible one is picked.
        assert_eq!(pick(&idx, "linux/arm/v8").unwrap(), nth(3));
        assert_eq!(pick(&idx, "linux/arm64").unwrap(), nth(4));
        assert_eq!(pick(&idx, "linux/s390x").unwrap(), nth(6));
        let e = pick(&idx, "linux/ppc64le").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "no matching manifest for linux/ppc64le in the manifest list entries"
        );
        assert!(pick(&idx, "linux/arm/v5").is_err());
    }

    #[test]
    fn arm64_without_variant_and_docker_list() {
        // Docker manifest lists often omit the arm64 variant; it means v8.
        let idx = index(&[("linux", "aarch64", None), ("linux", "amd64", Some("v3"))]);
        assert_eq!(pick(&idx, "linux/arm64/v8").unwrap(), nth(1));
        // amd64 baseline host cannot run a v3-only image; a v3 host can run v1.
        assert!(pick(&idx, "linux/amd64").is_err());
        assert_eq!(pick(&idx, "linux/amd64/v4").unwrap(), nth(2));
        assert!(select_platform(b"{not json", &Platform::host()).is_err());
    }
}
