//! Image commands: `images`, `tag`, `rmi`, `history`, `import`, `pull`, `push`.

use berth_reference::Reference;
use hyper::Method;
use serde_json::Value as Json;

use super::container::filters_json;
use super::{progress, run::pull_path, seg};
use crate::args::{
    CommitArgs, HistoryArgs, ImagesArgs, ImportArgs, PullArgs, PushArgs, RmiArgs, TagArgs,
};
use crate::client::{empty_body, reader_body, Body, Client, Query};
use crate::error::{self, go_io_error, CliError};
use crate::formatter::{self, image as fmt, Format};
use crate::{output, Ctx};

/// `images` / `image ls`; `called_as_images` enables docker's hint for
/// `berth images ls` typed instead of `berth image ls`.
pub async fn images(ctx: &mut Ctx, a: ImagesArgs, called_as_images: bool) -> Result<(), CliError> {
    ctx.require_max_args(a.reference.len(), 1)?;
    let mut filters = a.filter.clone();
    let match_name = a.reference.first().cloned();
    if let Some(name) = &match_name {
        filters.push(("reference".to_string(), name.clone()));
    }
    let path = Query::new()
        .set_if(a.all, "all", "1")
        .set_if(!filters.is_empty(), "filters", filters_json(&filters))
        .to_path("/images/json");
    let client = ctx.client().await?;
    // docker 28 shows what the daemon lists; the daemon hides intermediate layers.
    let list: Vec<Json> = client.get_json(&path).await?;
    let source = a.format.clone().unwrap_or_else(|| "table".to_string());
    let format = Format(fmt::images_format(&source, a.quiet, a.digests));
    let uses_digest = format.0.contains("{{.Digest}}");
    let rows: Vec<_> = list
        .iter()
        .flat_map(|img| fmt::image_rows(img, !a.no_trunc, a.digests, uses_digest))
        .collect();
    let text = formatter::render(&format, &fmt::images_header(), &rows).map_err(CliError::new)?;
    output::out(&text);
    if list.is_empty() && called_as_images {
        if let Some(name) = match_name.filter(|n| {
            [
                "build", "history", "import", "inspect", "list", "load", "ls", "prune", "pull",
                "push", "rm", "save", "tag",
            ]
            .contains(&n.as_str())
        }) {
            output::errln(&format!(
                "No images found matching \"{name}\": did you mean \"berth image {name}\"?"
            ));
        }
    }
    Ok(())
}

/// `image prune`: docker/cli's prompt, then the untagged and deleted lines and the total.
pub async fn prune(ctx: &mut Ctx, a: crate::args::ImagePruneArgs) -> Result<(), CliError> {
    let warning = if a.all {
        "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue? [y/N] "
    } else {
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    };
    if !a.force && !output::confirm(warning) {
        return Ok(());
    }
    let filters = if a.all {
        r#"{"dangling":{"false":true}}"#
    } else {
        r#"{"dangling":{"true":true}}"#
    };
    let path = Query::new()
        .set("filters", filters)
        .to_path("/images/prune");
    let body = ctx.client().await?.post(&path, None).await?;
    let v: Json = serde_json::from_slice(&body).map_err(|e| CliError::new(e.to_string()))?;
    let items = v["ImagesDeleted"].as_array().cloned().unwrap_or_default();
    if !items.is_empty() {
        output::outln("Deleted Images:");
        for i in &items {
            if let Some(u) = i["Untagged"].as_str() {
                output::outln(&format!("untagged: {u}"));
            }
            if let Some(d) = i["Deleted"].as_str() {
                output::outln(&format!("deleted: {d}"));
            }
        }
        output::outln("");
    }
    output::outln(&format!(
        "Total reclaimed space: {}",
        crate::units::human_size(v["SpaceReclaimed"].as_f64().unwrap_or(0.0))
    ));
    Ok(())
}

pub async fn commit(ctx: &mut Ctx, a: CommitArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.args.len(), 1)?;
    ctx.require_max_args(a.args.len(), 2)?;
    let container = &a.args[0];
    // docker/cli: the repository and tag travel separately; a digest is refused here.
    let (repo, tag) = match a.args.get(1) {
        Some(r) => {
            let parsed = Reference::parse_normalized(r).map_err(|e| {
                CliError::new(format!(
                    "Error parsing reference: \"{r}\" is not a valid repository/tag: {e}"
                ))
            })?;
            if parsed.digest().is_some() {
                return Err(CliError::new(
                    "refusing to create a tag with a digest reference",
                ));
            }
            (
                Some(parsed.familiar_name()),
                parsed.tag().map(str::to_string),
            )
        }
        None => (None, None),
    };
    let mut query = Query::new()
        .set("container", container.clone())
        .set_opt("repo", repo)
        .set_opt("tag", tag)
        .set_opt("comment", a.message.clone())
        .set_opt("author", a.author.clone())
        .set("pause", if a.pause { "1" } else { "0" });
    for change in &a.change {
        query = query.set("changes", change.clone());
    }
    let client = ctx.client().await?;
    let resp = client.post(&query.to_path("/commit"), None).await?;
    let v: Json = serde_json::from_slice(&resp)
        .map_err(|e| CliError::new(format!("invalid commit response: {e}")))?;
    output::outln(v.get("Id").and_then(Json::as_str).unwrap_or_default());
    Ok(())
}

pub async fn tag(ctx: &mut Ctx, a: TagArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.args.len(), 2)?;
    let (source, target) = (&a.args[0], &a.args[1]);
    let bad = |r: &str, e: &dyn std::fmt::Display| {
        CliError::new(format!(
            "Error parsing reference: \"{r}\" is not a valid repository/tag: {e}"
        ))
    };
    // The source may also be an image ID.
    if !is_image_id(source) {
        Reference::parse_normalized(source).map_err(|e| bad(source, &e))?;
    }
    let target_ref = Reference::parse_normalized(target).map_err(|e| bad(target, &e))?;
    if target_ref.digest().is_some() {
        return Err(CliError::new(
            "refusing to create a tag with a digest reference",
        ));
    }
    let target_ref = target_ref.with_default_tag();
    let path = Query::new()
        .set("repo", target_ref.familiar_name())
        .set("tag", target_ref.tag().unwrap_or_default())
        .to_path(&format!("/images/{}/tag", seg(source)));
    let client = ctx.client().await?;
    client.post(&path, None).await?;
    Ok(())
}

fn is_image_id(s: &str) -> bool {
    let hex = s.strip_prefix("sha256:").unwrap_or(s);
    !hex.is_empty()
        && hex.len() <= 64
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

pub async fn rmi(ctx: &mut Ctx, a: RmiArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.images.len(), 1)?;
    let client = ctx.client().await?;
    let mut errors = Vec::new();
    let mut fatal = false;
    for image in &a.images {
        let path = Query::new()
            .set_if(a.force, "force", "1")
            .set_if(a.no_prune, "noprune", "1")
            .to_path(&format!("/images/{}", seg(image)));
        match client.delete(&path).await {
            Ok(body) => {
                let items: Vec<Json> = serde_json::from_slice(&body).unwrap_or_default();
                for item in items {
                    match item["Deleted"].as_str().filter(|d| !d.is_empty()) {
                        Some(d) => output::outln(&format!("Deleted: {d}")),
                        None => output::outln(&format!(
                            "Untagged: {}",
                            item["Untagged"].as_str().unwrap_or_default()
                        )),
                    }
                }
            }
            Err(e) => {
                if !e.is_not_found() {
                    fatal = true;
                }
                errors.push(CliError::from(e));
            }
        }
    }
    match error::join(errors) {
        Err(e) if a.force && !fatal => {
            // With -f, missing images are reported but do not fail the command.
            output::errln(&e.message);
            Ok(())
        }
        other => other,
    }
}

pub async fn history(ctx: &mut Ctx, a: HistoryArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.images.len(), 1)?;
    let client = ctx.client().await?;
    let path = Query::new()
        .set_if(
            a.platform.is_some(),
            "platform",
            platform_json(a.platform.as_deref().unwrap_or_default()),
        )
        .to_path(&format!("/images/{}/history", seg(&a.images[0])));
    let items: Vec<Json> = client.get_json(&path).await?;
    let source = a.format.clone().unwrap_or_else(|| "table".to_string());
    let format = Format(fmt::history_format(&source, a.quiet, a.human));
    let rows: Vec<_> = items
        .iter()
        .map(|h| fmt::history_row(h, !a.no_trunc, a.human))
        .collect();
    let text = formatter::render(&format, &fmt::history_header(), &rows).map_err(CliError::new)?;
    output::out(&text);
    Ok(())
}

/// The API's JSON form of "os[/arch[/variant]]".
fn platform_json(p: &str) -> String {
    let mut parts = p.splitn(3, '/');
    let mut m = serde_json::Map::new();
    for key in ["os", "architecture", "variant"] {
        if let Some(v) = parts.next().filter(|v| !v.is_empty()) {
            m.insert(key.to_string(), Json::String(v.to_string()));
        }
    }
    Json::Object(m).to_string()
}

pub async fn import(ctx: &mut Ctx, a: ImportArgs) -> Result<(), CliError> {
    ctx.require_min_args(a.args.len(), 1)?;
    ctx.require_max_args(a.args.len(), 2)?;
    let source = a.args[0].clone();
    let reference = a.args.get(1).cloned();
    // The daemon takes repository and tag separately.
    let (repo, tag) = match &reference {
        Some(r) => {
            let parsed =
                Reference::parse_normalized(r).map_err(|e| CliError::new(e.to_string()))?;
            match (parsed.tag(), r.rfind(':')) {
                (Some(t), Some(i)) => (Some(r[..i].to_string()), Some(t.to_string())),
                _ => (Some(r.clone()), None),
            }
        }
        None => (None, None),
    };
    let is_url = source.starts_with("http://") || source.starts_with("https://");
    let (from_src, body): (String, Body) = if source == "-" {
        ("-".to_string(), reader_body(output::stdin_async()))
    } else if is_url {
        (source.clone(), empty_body())
    } else {
        let file = tokio::fs::File::open(&source)
            .await
            .map_err(|e| CliError::new(format!("open {source}: {}", go_io_error(&e))))?;
        ("-".to_string(), reader_body(file))
    };
    let mut query = Query::new()
        .set("fromSrc", from_src)
        .set_opt("repo", repo)
        .set_opt("tag", tag)
        .set_opt("message", a.message.clone())
        .set_opt("platform", a.platform.clone());
    for change in &a.change {
        query = query.set("changes", change.clone());
    }
    let client = ctx.client().await?;
    let stream = client
        .stream(
            Method::POST,
            &query.to_path("/images/create"),
            body,
            &[("content-type", "application/x-tar")],
        )
        .await?;
    progress::display(stream, progress::Out::Stdout).await
}

/// docker/cli's rule for pull and push: `latest` unless `-a` (which takes no tag).
fn with_default_tag(name: &str, all_tags: bool, quiet: bool) -> Result<Reference, CliError> {
    let r = Reference::parse_normalized(name).map_err(|e| CliError::new(e.to_string()))?;
    let name_only = r.tag().is_none() && r.digest().is_none();
    if all_tags && !name_only {
        return Err(CliError::new("tag can't be used with --all-tags/-a"));
    }
    if !all_tags && name_only {
        if !quiet {
            output::outln("Using default tag: latest");
        }
        return Ok(r.with_default_tag());
    }
    Ok(r)
}

pub async fn pull(ctx: &mut Ctx, a: PullArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.names.len(), 1)?;
    let name = &a.names[0];
    let r = with_default_tag(name, a.all_tags, a.quiet)?;
    let path =
        pull_path(&r.to_string(), a.all_tags, a.platform.as_deref()).map_err(CliError::new)?;
    let auth = ctx.registry_auth(&r.to_string())?;
    let client = ctx.client().await?;
    let stream = client
        .stream(
            Method::POST,
            &path,
            empty_body(),
            &[("x-registry-auth", &auth)],
        )
        .await?;
    let out = if a.quiet {
        progress::Out::Discard
    } else {
        progress::Out::Stdout
    };
    progress::display(stream, out).await?;
    output::outln(&r.to_string());
    Ok(())
}

pub async fn push(ctx: &mut Ctx, a: PushArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.names.len(), 1)?;
    let platform = match a.platform.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => {
            let json = parse_platform(p).inspect_err(|_| {
                output::err(&format!("Invalid platform {p}"));
            })?;
            output::note(
                &mut output::Stdout,
                "Using --platform pushes only the specified platform manifest of a multi-platform image index.\nOther components, like attestations, will not be included.\nTo push the complete multi-platform image, remove the --platform flag.\n",
            );
            Some(json)
        }
        None => None,
    };
    let name = &a.names[0];
    let r = with_default_tag(name, a.all_tags, a.quiet)?;
    let auth = ctx.registry_auth(&r.to_string())?;
    if r.digest().is_some() {
        return Err(CliError::new("cannot push a digest reference"));
    }
    let client = ctx.client().await?;
    if platform.is_some() {
        require_api(&client, "1.46", "platform")?;
    }
    // docker's client sorts query parameters.
    let path = Query::new()
        .set_if(
            platform.is_some(),
            "platform",
            platform.clone().unwrap_or_default(),
        )
        .set_if(!a.all_tags, "tag", r.tag().unwrap_or_default())
        .to_path(&format!("/images/{}/push", seg(&r.name())));
    // The API requires the header even without credentials ("{}").
    let stream = client
        .stream(
            Method::POST,
            &path,
            empty_body(),
            &[("x-registry-auth", &auth)],
        )
        .await?;
    if a.quiet {
        progress::display(stream, progress::Out::Discard).await?;
        output::outln(&r.to_string());
        return Ok(());
    }
    progress::display(stream, progress::Out::Stdout).await
}

/// docker's `NewVersionError`: a feature the negotiated API version lacks.
pub fn require_api(client: &Client, version: &str, feature: &str) -> Result<(), CliError> {
    if client.version_at_least(version) {
        return Ok(());
    }
    Err(CliError::new(format!(
        "\"{feature}\" requires API version {version}, but the Docker daemon API version is {}",
        client.version()
    )))
}

/// Checks an "os[/arch[/variant]]" platform and returns its API JSON form.
pub fn parse_platform(p: &str) -> Result<String, CliError> {
    let parts: Vec<&str> = p.split('/').collect();
    let valid_part = |s: &&str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
    };
    if parts.len() > 3 || !parts.iter().all(valid_part) {
        return Err(CliError::new(format!(
            "\"{p}\": unknown operating system or architecture: invalid argument"
        )));
    }
    Ok(platform_json(&p.to_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_ids() {
        assert!(is_image_id("d644867353d2"));
        assert!(is_image_id(
            "sha256:d644867353d275c95044321018dbe521dbda88adc6c78a87c33bd5b3b3ddbbd8"
        ));
        assert!(!is_image_id("busybox"));
    }

    #[test]
    fn platform_flags() {
        assert_eq!(
            parse_platform("linux/ARM64").map_err(|e| e.message),
            Ok(r#"{"architecture":"arm64","os":"linux"}"#.to_string())
        );
        assert_eq!(
            parse_platform("linux//x").map_err(|e| e.message),
            Err(
                "\"linux//x\": unknown operating system or architecture: invalid argument"
                    .to_string()
            )
        );
        assert!(parse_platform("a/b/c/d").is_err());
    }

    #[test]
    fn platforms() {
        assert_eq!(
            platform_json("linux/amd64"),
            r#"{"architecture":"amd64","os":"linux"}"#
        );
        assert_eq!(
            platform_json("linux/arm/v7"),
            r#"{"architecture":"arm","os":"linux","variant":"v7"}"#
        );
    }
}
