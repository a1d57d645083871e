//! Registry commands: `login`, `logout`, `search`.

use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value as Json;

use super::container::filters_json;
use crate::args::{LoginArgs, LogoutArgs, SearchArgs};
use crate::client::{bytes_body, ApiError, Client, Query};
use crate::config::{auth_key_for_domain, convert_to_hostname, AuthConfig, INDEX_SERVER};
use crate::error::CliError;
use crate::formatter::{self, ellipsis, Format};
use crate::template::{Struct, Value};
use crate::{output, Ctx};

const REGISTER_SUGGEST: &str = "Log in with your Docker ID or email address to push and pull images from Docker Hub. If you don't have a Docker ID, head over to https://hub.docker.com/ to create one.";

/// docker's `verifyLoginFlags`: checks that need only the flags.
fn verify_login_flags(a: &LoginArgs) -> Result<(), CliError> {
    if a.password_stdin.is_some() {
        if a.password.is_some() {
            return Err(CliError::new(
                "conflicting options: cannot specify both --password and --password-stdin",
            ));
        }
        if a.username.is_none() {
            return Err(CliError::new(
                "the --password-stdin option requires --username to be set",
            ));
        }
    }
    if a.username.as_deref() == Some("") {
        return Err(CliError::new("username is empty"));
    }
    if a.password.as_deref() == Some("") {
        return Err(CliError::new("password is empty"));
    }
    Ok(())
}

/// The password read from stdin for `--password-stdin`, without the final line ending.
fn password_from_stdin(data: &[u8]) -> String {
    let s = String::from_utf8_lossy(data);
    let s = s.strip_suffix('\n').unwrap_or(&s);
    s.strip_suffix('\r').unwrap_or(s).to_string()
}

pub async fn login(ctx: &mut Ctx, a: LoginArgs) -> Result<(), CliError> {
    ctx.require_max_args(a.server.len(), 1)?;
    verify_login_flags(&a)?;
    let mut user = a.username.clone().unwrap_or_default();
    let mut password = a.password.clone().unwrap_or_default();
    if !password.is_empty() {
        output::errln("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if a.password_stdin == Some(true) {
        if user.is_empty() {
            return Err(CliError::new("username is empty"));
        }
        let data = output::read_stdin().map_err(CliError::from)?;
        password = password_from_stdin(&data);
    }

    let server = match a.server.first().map(String::as_str) {
        Some(s) if !s.is_empty() && s != "docker.io" => s.to_string(),
        _ => INDEX_SERVER.to_string(),
    };
    let is_default = server == INDEX_SERVER;
    let server = if is_default {
        server
    } else {
        convert_to_hostname(&server)
    };

    // Stored credentials are tried first, but only when none were given.
    let check_store = user.is_empty() && password.is_empty();
    let (stored, lookup) = if check_store {
        match ctx.config().get_auth(&server) {
            Ok(a) => (a, Ok(())),
            Err(e) => (AuthConfig::default(), Err(e)),
        }
    } else {
        (AuthConfig::default(), Ok(()))
    };
    let mut message = None;
    if lookup.is_ok() && !stored.username.is_empty() && !stored.password.is_empty() {
        let mut auth = stored.clone();
        auth.server_address = server.clone();
        match login_with_stored(ctx, auth).await {
            Ok(m) => message = Some(m),
            Err(()) => message = None,
        }
    }
    if message.is_none() {
        let default_user = stored.username.clone();
        if (user.is_empty() || password.is_empty()) && !output::stdin_is_terminal() {
            return Err(CliError::new(
                "Error: Cannot perform an interactive login from a non TTY device",
            ));
        }
        prompt_for_credentials(&mut user, &mut password, &default_user, &server)?;
        let mut auth = AuthConfig {
            username: user,
            password,
            server_address: server,
            ..AuthConfig::default()
        };
        let client = ctx.client().await?;
        let (status, token) = registry_login(&client, &auth).await?;
        if !token.is_empty() {
            auth.password = String::new();
            auth.identity_token = token;
        }
        ctx.config()
            .store_auth(&auth)
            .map_err(|e| CliError::new(format!("Error saving credentials: {e}")))?;
        message = Some(status);
    }
    if let Some(m) = message.filter(|m| !m.is_empty()) {
        output::outln(&m);
    }
    Ok(())
}

/// docker's `loginWithStoredCredentials`; `Err` when they did not work and
/// the user has to be asked.
async fn login_with_stored(ctx: &mut Ctx, mut auth: AuthConfig) -> Result<String, ()> {
    output::errln(&format!(
        "Authenticating with existing credentials... [Username: {}]",
        auth.username
    ));
    output::note(
        &mut output::Stderr,
        "To login with a different account, run 'berth logout' followed by 'berth login'",
    );
    output::err("\n\n");
    let client = match ctx.client().await {
        Ok(c) => c,
        Err(e) => {
            output::errln(&format!("Login did not succeed, error: {e}"));
            return Err(());
        }
    };
    match registry_login(&client, &auth).await {
        Ok((status, token)) => {
            if !token.is_empty() {
                auth.password = String::new();
                auth.identity_token = token;
            }
            if let Err(e) = ctx.config().store_auth(&auth) {
                output::errln(&format!("Error saving credentials: {e}"));
                return Err(());
            }
            Ok(status)
        }
        Err(e) => {
            if matches!(e, ApiError::Daemon { status: 401, .. }) {
                output::errln("Stored credentials invalid or expired");
            } else {
                output::errln(&format!("Login did not succeed, error: {e}"));
            }
            Err(())
        }
    }
}

/// `POST /auth`: the daemon checks the credentials against the registry.
async fn registry_login(client: &Client, auth: &AuthConfig) -> Result<(String, String), ApiError> {
    // Serialized from the struct, so fields go in docker's order.
    let body = serde_json::to_vec(auth).map_err(|e| ApiError::Protocol(e.to_string()))?;
    let resp = client
        .send(
            Method::POST,
            "/auth",
            bytes_body(body),
            &[("content-type", "application/json")],
        )
        .await?;
    let resp = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| ApiError::Protocol(e.to_string()))?
        .to_bytes();
    let v: Json = serde_json::from_slice(&resp)
        .map_err(|e| ApiError::Protocol(format!("error decoding response from daemon: {e}")))?;
    let field = |k: &str| {
        v.get(k)
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string()
    };
    Ok((field("Status"), field("IdentityToken")))
}

/// docker's `PromptUserForCredentials`: asks for whatever was not given.
fn prompt_for_credentials(
    user: &mut String,
    password: &mut String,
    default_user: &str,
    server: &str,
) -> Result<(), CliError> {
    *user = user.trim().to_string();
    if user.is_empty() {
        if server == INDEX_SERVER {
            output::outln(REGISTER_SUGGEST);
        }
        let default_user = default_user.trim();
        if default_user.is_empty() {
            output::out("Username: ");
        } else {
            output::out(&format!("Username ({default_user}): "));
        }
        *user = output::read_stdin_line()?.trim().to_string();
        if user.is_empty() {
            *user = default_user.to_string();
        }
        if user.is_empty() {
            return Err(CliError::new("Error: Non-null Username Required"));
        }
    }
    *password = password.trim().to_string();
    if password.is_empty() {
        if server == INDEX_SERVER {
            output::note(
                &mut output::Stderr,
                "A Personal Access Token (PAT) can be used instead.\nTo create a PAT, visit https://app.docker.com/settings\n\n",
            );
        }
        output::out("Password: ");
        *password = read_password()?.trim().to_string();
        output::outln("");
        if password.is_empty() {
            return Err(CliError::new("Error: Password Required"));
        }
    }
    Ok(())
}

/// Reads a line from the terminal with echo turned off.
fn read_password() -> Result<String, CliError> {
    if output::is_captured() {
        return Ok(output::read_stdin_line()?);
    }
    let term = if console::Term::stdout().is_term() {
        console::Term::stdout()
    } else {
        console::Term::stderr()
    };
    Ok(term.read_secure_line()?)
}

pub async fn logout(ctx: &mut Ctx, a: LogoutArgs) -> Result<(), CliError> {
    ctx.require_max_args(a.server.len(), 1)?;
    let (server, is_default) = match a.server.first().filter(|s| !s.is_empty()) {
        Some(s) => (s.clone(), false),
        None => (INDEX_SERVER.to_string(), true),
    };
    let mut candidates = vec![server.clone()];
    let hostname = if is_default {
        server
    } else {
        let h = convert_to_hostname(&server);
        // Older clients stored the address in any of these forms.
        candidates.extend([h.clone(), format!("http://{h}"), format!("https://{h}")]);
        h
    };
    output::outln(&format!("Removing login credentials for {hostname}"));
    let cfg = ctx.config();
    let errors: Vec<(String, String)> = candidates
        .iter()
        .filter_map(|r| cfg.erase_auth(r).err().map(|e| (r.clone(), e)))
        .collect();
    if errors.len() == candidates.len() {
        output::errln("WARNING: could not erase credentials:");
        for (r, e) in errors {
            output::errln(&format!("{r}: {e}"));
        }
    }
    Ok(())
}

/// docker's `splitReposSearchTerm`: the registry a search term names.
fn search_registry(term: &str) -> &str {
    match term.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

const SEARCH_TABLE: &str = "table {{.Name}}\t{{.Description}}\t{{.StarCount}}\t{{.IsOfficial}}";

fn search_header() -> Value {
    formatter::header(&[
        ("Name", "NAME"),
        ("Description", "DESCRIPTION"),
        ("StarCount", "STARS"),
        ("IsOfficial", "OFFICIAL"),
    ])
}

/// docker's `searchContext` for one result.
fn search_row(r: &Json, trunc: bool) -> Value {
    let text = |k: &str| r.get(k).and_then(Json::as_str).unwrap_or_default();
    let mut description = text("description").replace(['\n', '\r'], " ");
    if trunc {
        description = ellipsis(&description, 45);
    }
    let official = r
        .get("is_official")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    let stars = r.get("star_count").and_then(Json::as_i64).unwrap_or(0);
    Value::from(
        Struct::new("*registry.searchContext")
            .field("Description", description)
            .field("IsOfficial", if official { "[OK]" } else { "" })
            .field("Name", text("name"))
            .field("StarCount", stars.to_string())
            .json_field("IsOfficial", if official { "true" } else { "false" }),
    )
}

pub async fn search(ctx: &mut Ctx, a: SearchArgs) -> Result<(), CliError> {
    ctx.require_exact_args(a.term.len(), 1)?;
    let term = &a.term[0];
    if a.filter.iter().any(|(k, _)| k == "is-automated") {
        output::errln("WARNING: the \"is-automated\" filter is deprecated, and searching for \"is-automated=true\" will not yield any results in future.");
    }
    // Failing to find credentials is not an error: the search may not need them.
    let key = auth_key_for_domain(search_registry(term));
    let auth = ctx
        .config()
        .get_auth(&key)
        .unwrap_or_default()
        .encode_header();
    // docker's client sorts query parameters.
    let path = Query::new()
        .set_if(!a.filter.is_empty(), "filters", filters_json(&a.filter))
        .set_if(a.limit > 0, "limit", a.limit.to_string())
        .set("term", term.clone())
        .to_path("/images/search");
    let client = ctx.client().await?;
    let results: Vec<Json> = client
        .get_json_with(&path, &[("x-registry-auth", &auth)])
        .await?;
    let source = match a.format.as_deref() {
        None | Some("") | Some("table") => SEARCH_TABLE.to_string(),
        Some(f) => f.to_string(),
    };
    let rows: Vec<Value> = results.iter().map(|r| search_row(r, !a.no_trunc)).collect();
    let text =
        formatter::render(&Format(source), &search_header(), &rows).map_err(CliError::new)?;
    output::out(&text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login_args(user: Option<&str>, password: Option<&str>, stdin: Option<bool>) -> LoginArgs {
        LoginArgs {
            username: user.map(String::from),
            password: password.map(String::from),
            password_stdin: stdin,
            server: vec![],
        }
    }

    #[test]
    fn login_flag_rules() {
        let err = |a: LoginArgs| verify_login_flags(&a).err().map(|e| e.message);
        assert_eq!(
            err(login_args(Some("u"), Some("p"), Some(true))).as_deref(),
            Some("conflicting options: cannot specify both --password and --password-stdin")
        );
        assert_eq!(
            err(login_args(None, None, Some(true))).as_deref(),
            Some("the --password-stdin option requires --username to be set")
        );
        assert_eq!(
            err(login_args(Some(""), None, None)).as_deref(),
            Some("username is empty")
        );
        assert_eq!(
            err(login_args(Some("u"), Some(""), None)).as_deref(),
            Some("password is empty")
        );
        assert_eq!(err(login_args(Some("u"), None, Some(false))), None);
        assert_eq!(err(login_args(None, None, None)), None);
    }

    #[test]
    fn stdin_passwords_lose_one_line_ending() {
        assert_eq!(password_from_stdin(b"secret\r\n"), "secret");
        assert_eq!(password_from_stdin(b"secret\n\n"), "secret\n");
        assert_eq!(password_from_stdin(b" sp "), " sp ");
    }

    #[test]
    fn search_terms_name_registries() {
        assert_eq!(search_registry("busybox"), "docker.io");
        assert_eq!(search_registry("me/app"), "docker.io");
        assert_eq!(search_registry("r.example/app"), "r.example");
        assert_eq!(search_registry("localhost/app"), "localhost");
        assert_eq!(search_registry("host:5000/app"), "host:5000");
    }

    #[test]
    fn search_rows() {
        let results: Vec<Json> = serde_json::from_str(
            r#"[{"name":"busybox","description":"Busybox base image, with a description long enough to be cut","star_count":3300,"is_official":true},
                {"name":"me/bb","description":"line\nbreak","star_count":5,"is_official":false}]"#,
        )
        .expect("json");
        let rows: Vec<Value> = results.iter().map(|r| search_row(r, true)).collect();
        let table = formatter::render(&Format(SEARCH_TABLE.into()), &search_header(), &rows);
        assert_eq!(
            table.as_deref(),
            Ok("NAME      DESCRIPTION                                     STARS     OFFICIAL\nbusybox   Busybox base image, with a description long …   3300      [OK]\nme/bb     line break                                      5         \n")
        );
        let json = formatter::render(&Format("json".into()), &search_header(), &rows[1..]);
        assert_eq!(
            json.as_deref(),
            Ok("{\"Description\":\"line break\",\"IsOfficial\":\"false\",\"Name\":\"me/bb\",\"StarCount\":\"5\"}\n")
        );
        let custom = formatter::render(
            &Format("{{.Name}}: {{.IsOfficial}}".into()),
            &search_header(),
            &rows[..1],
        );
        assert_eq!(custom.as_deref(), Ok("busybox: [OK]\n"));
    }
}
