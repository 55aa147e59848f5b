//! `serve`: the stand-alone emulator writes its CA and credentials, loads and exports state.

use std::time::Duration;

use azure_model::api_version::RESOURCES;
use clap::Parser;
use pullproof_emulator::{ServeArgs, serve_until};
use reqwest::StatusCode;
use serde_json::Value;

use crate::common::{client, json_of};

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    serve: ServeArgs,
}

#[tokio::test]
async fn serve_writes_credentials_and_exports_on_exit() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).display().to_string();
    let state = r#"{"subscriptionId": "5e1f0000-0000-4000-8000-000000000001", "resources": [
        {"id": "/subscriptions/5e1f0000-0000-4000-8000-000000000001/resourceGroups/loaded", "name": "loaded",
         "type": "Microsoft.Resources/resourceGroups", "location": "westeurope", "properties": {"provisioningState": "Succeeded"}}]}"#;
    std::fs::write(path("state.json"), state).unwrap();
    let args = Cli::parse_from([
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--state",
        &path("state.json"),
        "--export-on-exit",
        &path("out.json"),
        "--ca-out",
        &path("ca.pem"),
        "--credentials-out",
        &path("creds.json"),
    ])
    .serve;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(args, async move {
        let _ = stopped.await;
    }));
    let creds = loop {
        if let Ok(text) = std::fs::read_to_string(path("creds.json")) {
            break serde_json::from_str::<Value>(&text).unwrap();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(path("creds.json")).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let base = creds["resourceManagerEndpoint"].as_str().unwrap().to_string();
    let c = client(&std::fs::read_to_string(path("ca.pem")).unwrap(), None, &[]);
    let (status, token) = json_of(
        c.post(format!("{base}/{}/oauth2/v2.0/token", creds["tenantId"].as_str().unwrap()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", creds["clientId"].as_str().unwrap()),
                ("client_secret", creds["clientSecret"].as_str().unwrap()),
                ("scope", "https://management.azure.com/.default"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let sub = creds["subscriptionId"].as_str().unwrap();
    assert_eq!(sub, "5e1f0000-0000-4000-8000-000000000001", "the state's subscription is used");
    let token = token["access_token"].as_str().unwrap();
    let resp = c
        .get(format!("{base}/subscriptions/{sub}/resourcegroups/loaded?api-version={RESOURCES}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let resp = c
        .put(format!("{base}/subscriptions/{sub}/resourcegroups/added?api-version={RESOURCES}"))
        .bearer_auth(token)
        .json(&serde_json::json!({"location": "westeurope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    let exported = azure_model::Inventory::from_json(&std::fs::read_to_string(path("out.json")).unwrap()).unwrap();
    let mut groups: Vec<&str> = exported.resource_groups.iter().map(|g| g.name.as_str()).collect();
    groups.sort();
    assert_eq!(groups, ["added", "loaded"]);
    assert!(c.get(format!("{base}/subscriptions")).send().await.is_err(), "the listener is closed");
}
