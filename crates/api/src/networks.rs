//! Network endpoints: `/networks`, `/networks/{id}`, `/networks/create`,
//! `/networks/{id}/connect|disconnect` and `/networks/prune`, in dockerd's shapes.

use std::collections::{BTreeMap, HashMap};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use berth_engine::networks::{IpamRequest, Network, NetworkCreate};
use berth_engine::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::convert::rfc3339_nano;
use crate::error::{ApiError, ApiResult};
use crate::query::Query;
use crate::server::{empty, json_body, json_response, ok_json};

pub(crate) fn routes() -> Router<Engine> {
    Router::new()
        .route("/networks", get(list))
        .route("/networks/create", post(create))
        .route("/networks/prune", post(prune))
        .route("/networks/{id}", get(inspect).delete(remove))
        .route("/networks/{id}/connect", post(connect))
        .route("/networks/{id}/disconnect", post(disconnect))
}

/// A network as dockerd shows it; `containers` only in inspect.
fn network_json(engine: &Engine, n: &Network, with_containers: bool) -> Value {
    let config: Vec<Value> = n
        .subnets
        .iter()
        .map(|s| {
            let mut c = json!({"Subnet": s.subnet.to_string(), "Gateway": s.gateway.to_string()});
            if let Some(r) = &s.ip_range {
                c["IPRange"] = json!(r.to_string());
            }
            if !s.aux_addresses.is_empty() {
                let aux: BTreeMap<&String, String> = s
                    .aux_addresses
                    .iter()
                    .map(|(k, v)| (k, v.to_string()))
                    .collect();
                c["AuxiliaryAddresses"] = json!(aux);
            }
            c
        })
        .collect();
    let mut v = json!({
        "Name": n.name,
        "Id": n.id,
        "Created": rfc3339_nano(&n.created),
        "Scope": "local",
        "Driver": n.driver,
        "EnableIPv4": true,
        "EnableIPv6": n.ipv6,
        "IPAM": {"Driver": "default", "Options": null, "Config": config},
        "Internal": n.internal,
        "Attachable": n.attachable,
        "Ingress": false,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": false,
        "Containers": {},
        "Options": n.options,
        "Labels": n.labels,
    });
    if with_containers {
        let containers: HashMap<String, Value> = engine
            .network_containers(&n.id)
            .into_iter()
            .map(|a| {
                (
                    a.id,
                    json!({
                        "Name": a.name,
                        "EndpointID": a.endpoint.endpoint_id,
                        "MacAddress": a.endpoint.mac,
                        "IPv4Address": a.endpoint.ip,
                        "IPv6Address": "",
                    }),
                )
            })
            .collect();
        v["Containers"] = json!(containers);
    }
    v
}

fn matches(
    engine: &Engine,
    n: &Network,
    filters: &BTreeMap<String, Vec<String>>,
) -> ApiResult<bool> {
    for (key, values) in filters {
        let ok = values.iter().any(|v| match key.as_str() {
            "name" => n.name.contains(v.as_str()),
            "id" => n.id.starts_with(v.as_str()),
            "driver" => &n.driver == v,
            "scope" => v == "local",
            "type" => match v.as_str() {
                "builtin" => n.is_predefined(),
                "custom" => !n.is_predefined(),
                _ => false,
            },
            "label" => match v.split_once('=') {
                Some((k, val)) => n.labels.get(k).map(String::as_str) == Some(val),
                None => n.labels.contains_key(v),
            },
            "dangling" => {
                let dangling = !n.is_predefined() && engine.network_containers(&n.id).is_empty();
                (v == "true" || v == "1") == dangling
            }
            _ => false,
        });
        if !matches!(
            key.as_str(),
            "name" | "id" | "driver" | "scope" | "type" | "label" | "dangling"
        ) {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
        if key == "type" {
            if let Some(bad) = values
                .iter()
                .find(|v| !matches!(v.as_str(), "builtin" | "custom"))
            {
                return Err(ApiError::bad_request(format!(
                    "invalid filter: 'type'='{bad}'"
                )));
            }
        }
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn list(State(engine): State<Engine>, q: Query) -> ApiResult {
    let filters = q.filters()?;
    let mut out = Vec::new();
    for n in engine.list_networks() {
        if matches(&engine, &n, &filters)? {
            out.push(network_json(&engine, &n, false));
        }
    }
    ok_json(&out)
}

async fn inspect(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    let n = engine.inspect_network(&id)?;
    ok_json(&network_json(&engine, &n, true))
}

async fn remove(State(engine): State<Engine>, Path(id): Path<String>) -> ApiResult {
    engine.remove_network(&id).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamConfigWire {
    subnet: String,
    #[serde(rename = "IPRange")]
    ip_range: String,
    gateway: String,
    auxiliary_addresses: BTreeMap<String, String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct IpamWire {
    driver: String,
    config: Vec<IpamConfigWire>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct CreateWire {
    name: String,
    driver: String,
    internal: bool,
    attachable: bool,
    #[serde(rename = "EnableIPv6")]
    enable_ipv6: Option<bool>,
    #[serde(rename = "IPAM")]
    ipam: Option<IpamWire>,
    options: Option<BTreeMap<String, String>>,
    labels: Option<BTreeMap<String, String>>,
}

async fn create(
    State(engine): State<Engine>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let wire: CreateWire = json_body(&headers, body)?;
    let ipam = wire.ipam.unwrap_or_default();
    if !ipam.driver.is_empty() && ipam.driver != "default" {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("plugin \"{}\" not found", ipam.driver),
        ));
    }
    let req = NetworkCreate {
        name: wire.name,
        driver: wire.driver,
        internal: wire.internal,
        attachable: wire.attachable,
        ipv6: wire.enable_ipv6.unwrap_or(false),
        labels: wire.labels.unwrap_or_default(),
        options: wire.options.unwrap_or_default(),
        ipam: ipam
            .config
            .into_iter()
            .map(|c| IpamRequest {
                subnet: c.subnet,
                ip_range: c.ip_range,
                gateway: c.gateway,
                aux_addresses: c.auxiliary_addresses,
            })
            .collect(),
    };
    let n = engine.create_network(req).await?;
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"Id": n.id, "Warning": ""}),
    ))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct ConnectWire {
    container: String,
    endpoint_config: Option<bollard_stubs::models::EndpointSettings>,
}

async fn connect(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let wire: ConnectWire = json_body(&headers, body)?;
    let req = wire
        .endpoint_config
        .map(crate::convert::container::endpoint_request_from_wire)
        .unwrap_or_default();
    engine.connect_network(&id, &wire.container, req).await?;
    Ok(empty(StatusCode::OK))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase", default)]
struct DisconnectWire {
    container: String,
    #[allow(dead_code)]
    force: bool,
}

async fn disconnect(
    State(engine): State<Engine>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let wire: DisconnectWire = json_body(&headers, body)?;
    engine.disconnect_network(&id, &wire.container).await?;
    Ok(empty(StatusCode::OK))
}

async fn prune(State(engine): State<Engine>, q: Query) -> ApiResult {
    let filters = q.filters()?;
    for key in filters.keys() {
        if !matches!(key.as_str(), "until" | "label" | "label!") {
            return Err(ApiError::bad_request(format!("invalid filter '{key}'")));
        }
    }
    let until = match filters.get("until").and_then(|v| v.first()) {
        Some(v) => Some(
            crate::query::parse_unix_timestamp(v)
                .map_err(|e| ApiError::bad_request(format!("invalid filter 'until={v}': {e}")))?,
        ),
        None => None,
    };
    let labels = filters.get("label").cloned().unwrap_or_default();
    let not_labels = filters.get("label!").cloned().unwrap_or_default();
    let has = |n: &Network, l: &String| match l.split_once('=') {
        Some((k, v)) => n.labels.get(k).map(String::as_str) == Some(v),
        None => n.labels.contains_key(l),
    };
    let removed = engine
        .prune_networks(|n| {
            until.is_some_and(|t| n.created >= t)
                || !labels.iter().all(|l| has(n, l))
                || not_labels.iter().any(|l| has(n, l))
        })
        .await?;
    ok_json(&json!({ "NetworksDeleted": removed }))
}
