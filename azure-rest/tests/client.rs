//! The client against a small scripted HTTP server on loopback: retries (a POST is never re-sent
//! once the service may have received it), Retry-After, paging, error envelopes, long-running
//! operations and request counting.

use std::sync::Arc;
use std::time::{Duration, Instant};

use azure_rest::{Client, StaticToken};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Mutex;

/// One scripted answer: status, extra headers, body.
type Answer = (u16, Vec<(&'static str, String)>, String);

/// Serves the scripted answers in order, recording each request line.
async fn script(answers: Vec<Answer>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        for (status, headers, body) in answers {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let mut buf = vec![0u8; 16384];
            let n = sock.read(&mut buf).await.unwrap_or(0);
            let req = String::from_utf8_lossy(&buf[..n]).to_string();
            log.lock().await.push(req.lines().next().unwrap_or_default().to_string());
            assert!(req.to_ascii_lowercase().contains("authorization: bearer t0ken"), "{req}");
            let mut head = format!("HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n", body.len());
            for (k, v) in headers {
                // `{base}` stands for this server's own URL (operation and location headers).
                head.push_str(&format!("{k}: {}\r\n", v.replace("{base}", &format!("http://{addr}"))));
            }
            let _ = sock.write_all(format!("{head}\r\n{body}").as_bytes()).await;
        }
    });
    (format!("http://{addr}"), seen)
}

fn client(base: &str) -> Client {
    Client::builder(base, "scope")
        .token_source(Arc::new(StaticToken("t0ken".into())))
        .backoff(Duration::from_millis(20))
        .build()
        .unwrap()
}

#[tokio::test]
async fn retries_429_honouring_retry_after_then_succeeds() {
    let (base, seen) = script(vec![
        (429, vec![("retry-after", "1".into())], "{}".into()),
        (503, vec![], "".into()),
        (200, vec![], r#"{"name":"acr"}"#.into()),
    ])
    .await;
    let c = client(&base);
    let start = Instant::now();
    let v = c.send(azure_rest::Method::Get, "/subscriptions/s/x", "2025-11-01", None).await.unwrap();
    assert_eq!(v["name"], "acr");
    assert!(start.elapsed() >= Duration::from_secs(1), "Retry-After was not honoured");
    assert_eq!(c.requests_sent(), 3);
    let seen = seen.lock().await;
    assert_eq!(seen[0], "GET /subscriptions/s/x?api-version=2025-11-01 HTTP/1.1");
}

#[tokio::test]
async fn maps_arm_error_envelope() {
    let body = r#"{"error":{"code":"AuthorizationFailed","message":"The client 'x' does not have authorization"}}"#;
    let (base, _) = script(vec![(403, vec![], body.into())]).await;
    let err = client(&base).get::<serde_json::Value>("/subscriptions/s/y", "1").await.unwrap_err();
    assert!(err.is_forbidden());
    assert_eq!(err.code(), Some("AuthorizationFailed"));
    assert_eq!(
        err.to_string(),
        "GET /subscriptions/s/y answered 403: AuthorizationFailed: The client 'x' does not have authorization"
    );
}

#[tokio::test]
async fn follows_next_link() {
    let (base, seen) = script(vec![
        (200, vec![], r#"{"value":[{"n":1},{"n":2}],"nextLink":"/next?page=2"}"#.into()),
        (200, vec![], r#"{"value":[{"n":3}]}"#.into()),
    ])
    .await;
    let items: Vec<serde_json::Value> = client(&base).list("/subscriptions/s/items", "2").await.unwrap();
    assert_eq!(items.iter().map(|i| i["n"].as_u64().unwrap()).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(seen.lock().await[1], "GET /next?page=2 HTTP/1.1");
}

#[tokio::test]
async fn delete_of_missing_resource_is_done() {
    let (base, _) =
        script(vec![(404, vec![], r#"{"error":{"code":"ResourceNotFound","message":"gone"}}"#.into())]).await;
    client(&base).delete("/subscriptions/s/z", "1").await.unwrap();
}

#[tokio::test]
async fn a_post_answered_503_is_not_sent_again() {
    // `addPassword` answered 503 may have created a secret: a second POST would make another.
    let (base, seen) = script(vec![
        (503, vec![], r#"{"error":{"code":"ServiceUnavailable","message":"try later"}}"#.into()),
        (200, vec![], r#"{"secretText":"second"}"#.into()),
    ])
    .await;
    let c = client(&base);
    let body = serde_json::json!({"passwordCredential": {"displayName": "x"}});
    let err = c.post("/v1.0/applications(appId='a')/addPassword", "", Some(&body)).await.unwrap_err();
    assert_eq!(err.status(), Some(503), "{err}");
    assert_eq!(c.requests_sent(), 1);
    assert_eq!(seen.lock().await.len(), 1, "the POST was sent again: {:?}", seen.lock().await);
}

#[tokio::test]
async fn a_throttled_post_is_retried() {
    // 429: refused before processing, so sending it again is safe.
    let (base, seen) = script(vec![
        (429, vec![("retry-after", "0".into())], "{}".into()),
        (200, vec![], r#"{"secretText":"s"}"#.into()),
    ])
    .await;
    let c = client(&base);
    let v = c.post("/v1.0/applications(appId='a')/addPassword", "", None).await.unwrap();
    assert_eq!(v["secretText"], "s");
    assert_eq!(c.requests_sent(), 2);
    assert_eq!(seen.lock().await.len(), 2);
}

#[tokio::test]
async fn idempotent_requests_are_retried_on_503() {
    for method in [azure_rest::Method::Put, azure_rest::Method::Patch, azure_rest::Method::Get] {
        let (base, seen) = script(vec![(503, vec![], "".into()), (200, vec![], r#"{"ok":true}"#.into())]).await;
        let c = client(&base);
        let v = c.send(method, "/subscriptions/s/x", "1", None).await.unwrap();
        assert_eq!(v["ok"], true, "{method}");
        assert_eq!(seen.lock().await.len(), 2, "{method}");
    }
    // A POST that only reads may be marked safe to repeat.
    let (base, seen) = script(vec![(503, vec![], "".into()), (200, vec![], r#"{"username":"u"}"#.into())]).await;
    let c = client(&base);
    let v = c.send_idempotent(azure_rest::Method::Post, "/subscriptions/s/r/listCredentials", "1", None).await.unwrap();
    assert_eq!(v["username"], "u");
    assert_eq!(seen.lock().await.len(), 2);
}

/// Accepts connections and reads the request, then answers only from the `answer_from`-th
/// connection on (earlier ones hang); counts connections.
async fn hanging(answer_from: usize) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let n = count.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else { return };
            let i = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16384];
                let _ = sock.read(&mut buf).await;
                if i < answer_from {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
                let body = r#"{"ok":true}"#;
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
            });
        }
    });
    (format!("http://{addr}"), count)
}

fn impatient(base: &str) -> Client {
    let http = reqwest::Client::builder().timeout(Duration::from_millis(300)).build().unwrap();
    Client::builder(base, "scope")
        .token_source(Arc::new(StaticToken("t0ken".into())))
        .backoff(Duration::from_millis(10))
        .http(http)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_post_that_timed_out_is_not_sent_again() {
    let (base, count) = hanging(2).await;
    let c = impatient(&base);
    let err = c.post("/v1.0/applications(appId='a')/addPassword", "", None).await.unwrap_err();
    assert!(matches!(err, azure_rest::RestError::Transport { .. }), "{err}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(c.requests_sent(), 1);

    // A GET that timed out is sent again.
    let (base, count) = hanging(2).await;
    let c = impatient(&base);
    let v = c.send(azure_rest::Method::Get, "/subscriptions/s", "1", None).await.unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 2);
}

fn patient(base: &str) -> Client {
    Client::builder(base, "scope")
        .token_source(Arc::new(StaticToken("t0ken".into())))
        .backoff(Duration::from_millis(10))
        .poll_interval(Duration::from_millis(10))
        .build()
        .unwrap()
}

fn h(k: &'static str, v: &str) -> (&'static str, String) {
    (k, v.to_string())
}

#[tokio::test]
async fn a_put_that_runs_long_is_followed_to_the_finished_resource() {
    let (base, seen) = script(vec![
        (
            201,
            vec![h("azure-asyncoperation", "{base}/ops/1?api-version=1"), h("retry-after", "0")],
            r#"{"properties":{"provisioningState":"Updating"}}"#.into(),
        ),
        (200, vec![], r#"{"status":"InProgress"}"#.into()),
        (200, vec![], r#"{"status":"Succeeded"}"#.into()),
        (200, vec![], r#"{"properties":{"provisioningState":"Succeeded"}}"#.into()),
    ])
    .await;
    let c = patient(&base);
    let v = c.put("/subscriptions/s/x", "2024-05-01", &serde_json::json!({})).await.unwrap();
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    let seen = seen.lock().await.clone();
    assert_eq!(
        seen,
        [
            "PUT /subscriptions/s/x?api-version=2024-05-01 HTTP/1.1",
            "GET /ops/1?api-version=1 HTTP/1.1",
            "GET /ops/1?api-version=1 HTTP/1.1",
            "GET /subscriptions/s/x?api-version=2024-05-01 HTTP/1.1",
        ]
    );
    assert_eq!(c.requests_sent(), 4);
}

#[tokio::test]
async fn an_accepted_action_is_polled_at_its_location_until_done() {
    let (base, seen) = script(vec![
        (202, vec![h("location", "{base}/results/7")], String::new()),
        (202, vec![h("retry-after", "0")], String::new()),
        (204, vec![], String::new()),
    ])
    .await;
    let c = patient(&base);
    let v = c.post("/subscriptions/s/c/resetServicePrincipalProfile", "2025-05-01", None).await.unwrap();
    assert!(v.is_null());
    assert_eq!(seen.lock().await.len(), 3);
}

#[tokio::test]
async fn a_failed_operation_is_an_error_with_its_code() {
    let (base, _) = script(vec![
        (201, vec![h("azure-asyncoperation", "{base}/ops/2")], "{}".into()),
        (200, vec![], r#"{"status":"Failed","error":{"code":"QuotaExceeded","message":"no cores left"}}"#.into()),
    ])
    .await;
    let err = patient(&base).put("/subscriptions/s/x", "1", &serde_json::json!({})).await.unwrap_err();
    assert!(matches!(&err, azure_rest::RestError::Operation { status, .. } if status == "Failed"), "{err}");
    assert_eq!(err.code(), Some("QuotaExceeded"));
    assert!(err.to_string().contains("no cores left"), "{err}");
}

#[tokio::test]
async fn an_operation_that_never_ends_times_out_with_a_clear_error() {
    let (base, _) = script(vec![
        (202, vec![h("azure-asyncoperation", "{base}/ops/3")], String::new()),
        (200, vec![], r#"{"status":"InProgress"}"#.into()),
        (200, vec![], r#"{"status":"InProgress"}"#.into()),
        (200, vec![], r#"{"status":"InProgress"}"#.into()),
    ])
    .await;
    let c = Client::builder(&base, "scope")
        .token_source(Arc::new(StaticToken("t0ken".into())))
        .poll_interval(Duration::from_millis(30))
        .operation_timeout(Duration::from_millis(50))
        .build()
        .unwrap();
    let err = c.send(azure_rest::Method::Delete, "/subscriptions/s/x", "1", None).await.unwrap_err();
    assert!(matches!(err, azure_rest::RestError::OperationTimeout { .. }), "{err}");
}

#[tokio::test]
async fn a_created_answer_with_only_a_location_is_finished() {
    // Graph answers creates with 201 and the new object's Location: nothing to follow.
    let (base, seen) =
        script(vec![(201, vec![h("location", "{base}/v1.0/applications/1")], r#"{"id":"1"}"#.into())]).await;
    let v = patient(&base).post("/v1.0/applications", "", Some(&serde_json::json!({}))).await.unwrap();
    assert_eq!(v["id"], "1");
    assert_eq!(seen.lock().await.len(), 1);
}

#[tokio::test]
async fn an_update_answered_200_with_an_operation_is_followed_too() {
    let (base, seen) = script(vec![
        (
            200,
            vec![h("azure-asyncoperation", "{base}/ops/4")],
            r#"{"properties":{"provisioningState":"Updating"}}"#.into(),
        ),
        (200, vec![], r#"{"status":"Succeeded"}"#.into()),
        (200, vec![], r#"{"properties":{"provisioningState":"Succeeded"}}"#.into()),
    ])
    .await;
    let v = patient(&base).put("/subscriptions/s/x", "1", &serde_json::json!({})).await.unwrap();
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    assert_eq!(seen.lock().await.len(), 3);
}

#[tokio::test]
async fn a_put_followed_at_its_location_answers_the_resource() {
    let (base, seen) = script(vec![
        (202, vec![h("location", "{base}/results/8")], String::new()),
        (204, vec![], String::new()),
        (200, vec![], r#"{"name":"x","properties":{"provisioningState":"Succeeded"}}"#.into()),
    ])
    .await;
    let v = patient(&base).put("/subscriptions/s/x", "1", &serde_json::json!({})).await.unwrap();
    assert_eq!(v["name"], "x");
    assert_eq!(seen.lock().await.last().unwrap(), "GET /subscriptions/s/x?api-version=1 HTTP/1.1");
}

#[tokio::test]
async fn a_put_without_headers_is_followed_by_its_provisioning_state() {
    let (base, seen) = script(vec![
        (201, vec![], r#"{"properties":{"provisioningState":"Creating"}}"#.into()),
        (200, vec![], r#"{"properties":{"provisioningState":"Creating"}}"#.into()),
        (200, vec![], r#"{"properties":{"provisioningState":"Succeeded"}}"#.into()),
    ])
    .await;
    let v = patient(&base).put("/subscriptions/s/x", "1", &serde_json::json!({})).await.unwrap();
    assert_eq!(v["properties"]["provisioningState"], "Succeeded");
    assert_eq!(seen.lock().await.len(), 3);
    // Ending Failed is an error.
    let (base, _) = script(vec![
        (201, vec![], r#"{"properties":{"provisioningState":"Creating"}}"#.into()),
        (200, vec![], r#"{"properties":{"provisioningState":"Failed"}}"#.into()),
    ])
    .await;
    let err = patient(&base).put("/subscriptions/s/x", "1", &serde_json::json!({})).await.unwrap_err();
    assert!(matches!(&err, azure_rest::RestError::Operation { status, .. } if status == "Failed"), "{err}");
}

#[tokio::test]
async fn the_token_is_never_sent_to_a_poll_url_on_another_host() {
    let (base, seen) =
        script(vec![(202, vec![h("azure-asyncoperation", "https://elsewhere.example/ops/1")], String::new())]).await;
    let err = patient(&base).post("/subscriptions/s/c/resetServicePrincipalProfile", "1", None).await.unwrap_err();
    assert!(matches!(err, azure_rest::RestError::Config(_)), "{err}");
    assert!(err.to_string().contains("elsewhere.example"), "{err}");
    assert_eq!(seen.lock().await.len(), 1);
}
