//! Data-driven tests at the wire boundary: request bodies captured from the docker CLI (28.x)
//! in, engine requests out; engine containers in, JSON with the swagger's key names out.

use berth_reference::Digest;
use chrono::{Duration, TimeZone};
use serde_json::json;

use super::*;

fn digest(hex_char: char) -> Digest {
    let s = format!("sha256:{}", hex_char.to_string().repeat(64));
    serde_json::from_value(json!(s)).expect("digest from its string form")
}

fn fixture(name: &str) -> ContainerCreateBody {
    let text = match name {
        "interactive" => include_str!("../../../testdata/create-run-interactive.json"),
        "tty" => include_str!("../../../testdata/create-run-tty.json"),
        "mount-ports" => include_str!("../../../testdata/create-mount-ports.json"),
        _ => "{}",
    };
    serde_json::from_str(text).expect("the CLI's body decodes")
}

fn convert(body: ContainerCreateBody) -> Create {
    create_request(body, Some("test1".into()), None).expect("converts")
}

#[test]
fn docker_run_interactive_body() {
    // docker run -i --rm -e A=b -v /tmp:/data:ro --name test1 -w /w --entrypoint /bin/sh
    //   -l x=y --cpus 1.5 -m 64m --init --cap-add NET_ADMIN --dns 1.1.1.1
    //   --add-host h:1.2.3.4 --stop-signal SIGUSR1 --stop-timeout 5 --log-opt max-size=1m
    //   busybox -c 'echo hi'
    let Create { request, warnings } = convert(fixture("interactive"));
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(request.name.as_deref(), Some("test1"));
    assert_eq!(request.platform, None);
    let c = &request.config;
    assert_eq!(c.image, "busybox");
    assert!(c.attach_stdin && c.attach_stdout && c.attach_stderr);
    assert!(c.open_stdin && c.stdin_once && !c.tty);
    assert_eq!(c.env, vec!["A=b"]);
    assert_eq!(c.cmd, Some(vec!["-c".to_string(), "echo hi".to_string()]));
    assert_eq!(c.entrypoint, Some(vec!["/bin/sh".to_string()]));
    assert_eq!(c.working_dir, "/w");
    assert_eq!(c.labels.get("x").map(String::as_str), Some("y"));
    assert_eq!(c.stop_signal.as_deref(), Some("SIGUSR1"));
    assert_eq!(c.stop_timeout, Some(5));
    assert!(c.volumes.is_empty());
    assert!(c.exposed_ports.is_empty());
    let h = &request.host_config;
    assert!(h.auto_remove);
    assert_eq!(h.binds, vec!["/tmp:/data:ro"]);
    assert_eq!(h.network_mode, "default");
    assert_eq!(h.restart_policy.name, "no");
    assert_eq!(h.memory, 64 * 1024 * 1024);
    assert_eq!(h.nano_cpus, 1_500_000_000);
    assert_eq!(h.init, Some(true));
    assert_eq!(h.cap_add, vec!["CAP_NET_ADMIN"]);
    assert!(h.cap_drop.is_empty());
    assert_eq!(h.dns, vec!["1.1.1.1"]);
    assert_eq!(h.extra_hosts, vec!["h:1.2.3.4"]);
    assert_eq!(h.log_type, "");
    assert_eq!(h.log_config.get("max-size").map(String::as_str), Some("1m"));
    // PidsLimit 0 is "unlimited".
    assert_eq!(h.pids_limit, None);
}

#[test]
fn docker_run_tty_body() {
    // docker run -it busybox sh
    let Create { request, warnings } = convert(fixture("tty"));
    assert!(warnings.is_empty(), "{warnings:?}");
    let c = &request.config;
    assert!(c.tty && c.open_stdin && c.stdin_once);
    assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
    // null means "the image's", which the engine must be able to tell from [].
    assert_eq!(c.entrypoint, None);
    assert!(c.env.is_empty());
    assert!(!request.host_config.auto_remove);
    assert_eq!(request.host_config.init, None);
}

#[test]
fn docker_create_with_mount_and_ports() {
    // docker create --mount type=bind,src=/tmp,dst=/x -p 8080:80 --restart on-failure:3
    //   --pids-limit 0 busybox
    let Create { request, warnings } = convert(fixture("mount-ports"));
    // --mount binds are strict: the engine refuses a missing source instead of creating it.
    assert!(request.host_config.binds.is_empty());
    assert_eq!(request.host_config.strict_binds, vec!["/tmp:/x"]);
    assert_eq!(request.config.exposed_ports, vec!["80/tcp"]);
    assert_eq!(request.config.cmd, None);
    assert_eq!(request.host_config.restart_policy.name, "on-failure");
    assert_eq!(request.host_config.restart_policy.maximum_retry_count, 3);
    // Published ports are kept now (no "ignored" warning any more).
    assert!(warnings.is_empty(), "{warnings:?}");
    let bindings = &request.host_config.port_bindings["80/tcp"];
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].host_port, "8080");
}

#[test]
fn unknown_fields_are_ignored_and_minimal_bodies_work() {
    let body: ContainerCreateBody = serde_json::from_value(json!({
        "Image": "alpine",
        "SomeFutureField": {"x": 1},
        "MacAddress": "",
        "HostConfig": {"FutureKnob": true, "Capabilities": null},
    }))
    .expect("unknown fields are ignored");
    let Create { request, warnings } =
        create_request(body, Some(String::new()), Some(String::new())).expect("converts");
    assert!(warnings.is_empty());
    assert_eq!(request.config.image, "alpine");
    assert_eq!(request.name, None);
    assert_eq!(request.platform, None);
    assert_eq!(request.host_config, HostConfig::default());
    let minimal: ContainerCreateBody =
        serde_json::from_value(json!({"Image": "alpine"})).expect("decodes");
    let Create { request, .. } =
        create_request(minimal, None, Some("linux/amd64".into())).expect("converts");
    assert_eq!(request.platform.as_deref(), Some("linux/amd64"));
    assert_eq!(request.config.cmd, None);
}

#[test]
fn mounts_and_cpu_limits() {
    let body: ContainerCreateBody = serde_json::from_value(json!({
        "Image": "alpine",
        "HostConfig": {
            "CpuQuota": 50000,
            "CpuPeriod": 100000,
            "Mounts": [
                {"Type": "bind", "Source": "/src", "Target": "/dst", "ReadOnly": true,
                 "BindOptions": {"Propagation": "rslave"}},
                {"Type": "volume", "Target": "/anon"},
            ],
        },
    }))
    .expect("decodes");
    let Create { request, .. } = create_request(body, None, None).expect("converts");
    assert_eq!(request.host_config.nano_cpus, 500_000_000);
    assert_eq!(
        request.host_config.strict_binds,
        vec!["/src:/dst:ro,rslave"]
    );
    assert_eq!(request.config.volumes, vec!["/anon"]);

    let tmpfs: ContainerCreateBody = serde_json::from_value(json!({
        "Image": "alpine",
        "HostConfig": {
            "Tmpfs": {"/run": "size=1m"},
            "Mounts": [
                {"Type": "tmpfs", "Target": "/t", "TmpfsOptions": {"SizeBytes": 1024, "Mode": 448}},
                {"Type": "volume", "Source": "data", "Target": "/d", "VolumeOptions": {"NoCopy": true}},
            ],
        },
    }))
    .expect("decodes");
    let Create { request, .. } = create_request(tmpfs, None, None).expect("converts");
    let t: Vec<(&str, &str)> = request
        .host_config
        .tmpfs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(t, vec![("/run", "size=1m"), ("/t", "size=1024,mode=700")]);
    assert_eq!(request.host_config.strict_binds, vec!["data:/d:nocopy"]);
    let npipe: ContainerCreateBody = serde_json::from_value(json!({
        "Image": "alpine",
        "HostConfig": {"Mounts": [{"Type": "npipe", "Target": "/p"}]},
    }))
    .expect("decodes");
    let err = create_request(npipe, None, None).err();
    assert_eq!(
        err.map(|e| (e.status(), e.message().to_string())),
        Some((
            axum::http::StatusCode::BAD_REQUEST,
            "mounts of type \"npipe\" are not supported yet".to_string()
        ))
    );
    let both: ContainerCreateBody = serde_json::from_value(json!({
        "Image": "alpine",
        "HostConfig": {"NanoCpus": 1, "CpuQuota": 5},
    }))
    .expect("decodes");
    assert!(create_request(both, None, None).is_err());
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_default()
}

#[test]
fn status_texts_read_like_docker_ps() {
    let now = at(1_700_000_000);
    let mut s = ContainerState::default();
    assert_eq!(status_text(&s, now), "Created");
    s.status = Status::Running;
    s.started_at = Some(now - Duration::seconds(5));
    assert_eq!(status_text(&s, now), "Up 5 seconds");
    s.status = Status::Paused;
    assert_eq!(status_text(&s, now), "Up 5 seconds (Paused)");
    s.status = Status::Exited;
    s.exit_code = 137;
    s.finished_at = Some(now - Duration::minutes(3));
    assert_eq!(status_text(&s, now), "Exited (137) 3 minutes ago");
    s.status = Status::Restarting;
    s.exit_code = 1;
    assert_eq!(status_text(&s, now), "Restarting (1) 3 minutes ago");
    s.status = Status::Dead;
    assert_eq!(status_text(&s, now), "Dead");
    s.status = Status::Removing;
    assert_eq!(status_text(&s, now), "Removal In Progress");
}

fn sample_container() -> Container {
    serde_json::from_value(json!({
        "id": "c".repeat(64),
        "name": "web",
        "created": "2024-05-01T10:00:00.123456789Z",
        "image_id": digest('a'),
        "image_top_layer": null,
        "path": "sh",
        "args": ["-c", "echo hi"],
        "config": {
            "hostname": "cccccccccccc",
            "image": "busybox",
            "env": ["PATH=/bin"],
            "cmd": ["sh", "-c", "echo hi"],
            "labels": {"a": "b"},
        },
        "host_config": {
            "network_mode": "default",
            "log_type": "json-file",
            "restart_policy": {"name": "always", "maximum_retry_count": 0},
        },
        "state": {
            "status": "exited",
            "exit_code": 3,
            "oom_killed": true,
            "started_at": "2024-05-01T10:00:01Z",
            "finished_at": "2024-05-01T10:00:02.5Z",
        },
        "log_path": "/var/lib/berth/containers/c/c-json.log",
        "hostname_path": "/h",
        "hosts_path": "/hosts",
        "resolv_conf_path": "/r",
        "platform": "linux",
        "driver": "overlay2",
        "graph_driver": {"UpperDir": "/u", "WorkDir": "/w", "MergedDir": "/m"},
    }))
    .expect("a container record")
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

fn assert_has_keys(v: &Value, want: &[&str], what: &str) {
    let have = keys(v);
    for k in want {
        assert!(have.iter().any(|h| h == k), "{what} lacks {k}: {have:?}");
    }
}

#[test]
fn summary_uses_docker_key_names() {
    let c = sample_container();
    let now = at(1_714_557_602 + 180);
    let v = serde_json::to_value(summary(&c, "busybox".into(), now)).expect("serializes");
    // Key names from the swagger's ContainerSummary.
    assert_has_keys(
        &v,
        &[
            "Id",
            "Names",
            "Image",
            "ImageID",
            "Command",
            "Created",
            "Ports",
            "Labels",
            "State",
            "Status",
            "HostConfig",
            "NetworkSettings",
            "Mounts",
        ],
        "ContainerSummary",
    );
    assert_eq!(v["Names"], json!(["/web"]));
    assert_eq!(v["Command"], "sh -c echo hi");
    assert_eq!(v["Created"], 1_714_557_600);
    assert_eq!(v["State"], "exited");
    assert_eq!(v["Status"], "Exited (3) 2 minutes ago");
    assert_eq!(v["Ports"], json!([]));
    assert_eq!(v["Labels"], json!({"a": "b"}));
    assert_eq!(v["HostConfig"]["NetworkMode"], "default");
    assert_eq!(v["NetworkSettings"]["Networks"], json!({}));
    assert_eq!(v["ImageID"], format!("sha256:{}", "a".repeat(64)));
}

#[test]
fn inspect_is_shaped_like_dockers() {
    let v = inspect(&sample_container()).expect("inspect");
    assert_has_keys(
        &v,
        &[
            "Id",
            "Created",
            "Path",
            "Args",
            "State",
            "Image",
            "ResolvConfPath",
            "HostnamePath",
            "HostsPath",
            "LogPath",
            "Name",
            "RestartCount",
            "Driver",
            "Platform",
            "MountLabel",
            "ProcessLabel",
            "AppArmorProfile",
            "ExecIDs",
            "HostConfig",
            "GraphDriver",
            "Mounts",
            "Config",
            "NetworkSettings",
        ],
        "ContainerInspectResponse",
    );
    assert_has_keys(
        &v["State"],
        &[
            "Status",
            "Running",
            "Paused",
            "Restarting",
            "OOMKilled",
            "Dead",
            "Pid",
            "ExitCode",
            "Error",
            "StartedAt",
            "FinishedAt",
        ],
        "ContainerState",
    );
    assert_has_keys(
        &v["Config"],
        &[
            "Hostname",
            "Domainname",
            "User",
            "AttachStdin",
            "AttachStdout",
            "AttachStderr",
            "Tty",
            "OpenStdin",
            "StdinOnce",
            "Env",
            "Cmd",
            "Image",
            "Volumes",
            "WorkingDir",
            "Entrypoint",
            "OnBuild",
            "Labels",
        ],
        "ContainerConfig",
    );
    assert_has_keys(
        &v["HostConfig"],
        &[
            "NetworkMode",
            "RestartPolicy",
            "LogConfig",
            "AutoRemove",
            "Binds",
            "Privileged",
            "CapAdd",
            "Memory",
            "NanoCpus",
            "PidsLimit",
            "ShmSize",
        ],
        "HostConfig",
    );
    assert_has_keys(
        &v["NetworkSettings"],
        &["SandboxID", "SandboxKey", "Ports", "Networks", "IPAddress"],
        "NetworkSettings",
    );
    assert_eq!(v["Id"], "c".repeat(64));
    assert_eq!(v["Name"], "/web");
    assert_eq!(v["Created"], "2024-05-01T10:00:00.123456789Z");
    assert_eq!(v["Image"], format!("sha256:{}", "a".repeat(64)));
    assert_eq!(v["State"]["Status"], "exited");
    assert_eq!(v["State"]["Running"], false);
    assert_eq!(v["State"]["OOMKilled"], true);
    assert_eq!(v["State"]["ExitCode"], 3);
    assert_eq!(v["State"]["StartedAt"], "2024-05-01T10:00:01Z");
    assert_eq!(v["State"]["FinishedAt"], "2024-05-01T10:00:02.5Z");
    assert_eq!(v["ExecIDs"], Value::Null);
    assert_eq!(v["Mounts"], json!([]));
    assert_eq!(v["Driver"], "overlay2");
    assert_eq!(v["Platform"], "linux");
    assert_eq!(v["GraphDriver"]["Name"], "overlay2");
    assert_eq!(v["GraphDriver"]["Data"]["UpperDir"], "/u");
    assert_eq!(v["HostConfig"]["NetworkMode"], "default");
    assert_eq!(v["HostConfig"]["RestartPolicy"]["Name"], "always");
    assert_eq!(v["HostConfig"]["LogConfig"]["Type"], "json-file");
    assert_eq!(v["HostConfig"]["Binds"], Value::Null);
    assert_eq!(v["Config"]["Entrypoint"], Value::Null);
    assert_eq!(v["Config"]["Labels"], json!({"a": "b"}));
    assert_eq!(v["NetworkSettings"]["Networks"], json!({}));
    assert_eq!(v["NetworkSettings"]["SandboxKey"], "");
}

#[test]
fn never_started_containers_show_go_zero_times() {
    let mut c = sample_container();
    c.state = ContainerState::default();
    let v = inspect(&c).expect("inspect");
    assert_eq!(v["State"]["Status"], "created");
    assert_eq!(v["State"]["StartedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(v["State"]["FinishedAt"], "0001-01-01T00:00:00Z");
    assert_eq!(v["State"]["Pid"], 0);
    assert_eq!(v["State"]["Error"], "");
}

#[test]
fn inspect_config_round_trips_through_the_wire_model() {
    // What `docker commit`-like clients do: read Config back as the create body's fields.
    let c = sample_container();
    let wire_config = config_to_wire(&c.config);
    let body: ContainerCreateBody =
        serde_json::from_value(serde_json::to_value(&wire_config).expect("serializes"))
            .expect("the inspect Config decodes as a create body");
    let Create { request, .. } = create_request(body, None, None).expect("converts");
    assert_eq!(request.config, c.config);
}
