//! docker's `urlutil`: which build context specs are URLs and which are git repositories, as
//! the CLI (what to upload) and the daemon (`remote=`, what to fetch) both must tell them.

/// docker's `urlutil.IsURL`.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// docker's `urlutil.IsGitURL`: a URL ending in `.git` (with an optional `#fragment`), or a
/// `git://`, `git@` or `github.com/` address.
pub fn is_git_url(s: &str) -> bool {
    let path = s
        .split_once('#')
        .map_or(s, |(p, fragment)| if fragment.is_empty() { s } else { p });
    (is_url(s) && path.ends_with(".git"))
        || ["git://", "github.com/", "git@"]
            .iter()
            .any(|p| s.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_urls_as_docker_tells_them() {
        for yes in [
            "https://example.com/app.git",
            "http://example.com/app.git#main:sub",
            "https://github.com/docker/cli.git#v1:sub",
            "git://example.com/app",
            "git@example.com:team/app",
            "github.com/team/app",
        ] {
            assert!(is_git_url(yes), "{yes}");
        }
        for no in [
            "https://example.com/ctx.tar.gz",
            "https://example.com/app.git.tar",
            "example.com/app.git",
            "-",
        ] {
            assert!(!is_git_url(no), "{no}");
        }
        assert!(is_url("https://example.com/ctx.tar.gz"));
        assert!(!is_url("github.com/team/app"));
    }
}
