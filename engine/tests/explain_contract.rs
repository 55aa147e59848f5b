//! The `explain -o json` contract: the committed JSON Schema matches the types, and the real
//! binary's output (message as argument or on stdin) follows it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

const NOT_FOUND: &str = r#"Failed to pull image "myacr.azurecr.io/app:v1": rpc error: code = NotFound desc = failed to pull and unpack image "myacr.azurecr.io/app:v1": failed to resolve reference "myacr.azurecr.io/app:v1": myacr.azurecr.io/app:v1: not found"#;
const UNAUTHORIZED: &str = r#"Failed to pull image "myacr.azurecr.io/app:v1": failed to pull and unpack image "myacr.azurecr.io/app:v1": failed to resolve reference "myacr.azurecr.io/app:v1": failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://myacr.azurecr.io/oauth2/token?scope=repository%3Aapp%3Apull&service=myacr.azurecr.io: 401 Unauthorized"#;

#[test]
fn committed_explain_schema_is_current() {
    let committed = std::fs::read_to_string(root().join("engine/schema/explain.schema.json")).unwrap();
    assert!(
        committed == pulldoctor::explain::schema_json(),
        "engine/schema/explain.schema.json is stale: run `just schema`"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_pulldoctor")).args(["schema", "explain"]).output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), committed);
}

fn explain_arg(msg: &str) -> Value {
    let out =
        Command::new(env!("CARGO_BIN_EXE_pulldoctor")).args(["explain", msg, "--output", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn explain_stdin(msg: &str) -> Value {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pulldoctor"))
        .args(["explain", "-", "-o", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = msg.to_string();
    // Written on its own thread: a message larger than the pipe buffer must not deadlock.
    let writer = std::thread::spawn(move || {
        stdin.write_all(input.as_bytes()).unwrap();
        stdin.write_all(b"\n").unwrap();
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn explain_output_follows_its_schema() {
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("engine/schema/explain.schema.json")).unwrap())
            .unwrap();
    for msg in [NOT_FOUND, UNAUTHORIZED, "something unrelated"] {
        let doc = explain_arg(msg);
        let errors = validate(&schema, &schema, &doc, "$");
        assert!(errors.is_empty(), "{msg}: {errors:#?}\n{doc:#}");
        // The typed struct reads it back too.
        let typed: pulldoctor::explain::Explanation = serde_json::from_value(doc).unwrap();
        assert_eq!(typed.schema_version, pulldoctor::explain::SCHEMA_VERSION);
    }
    // The validator is not vacuous.
    let mut bad = explain_arg(NOT_FOUND);
    bad["candidates"][0]["score"] = Value::String("high".into());
    bad.as_object_mut().unwrap().remove("schemaVersion");
    assert_eq!(validate(&schema, &schema, &bad, "$").len(), 2);
}

#[test]
fn explain_reads_the_message_from_stdin() {
    let v = explain_stdin(NOT_FOUND);
    assert_eq!(v, explain_arg(NOT_FOUND));
    assert_eq!(v["symptom"]["class"], "not_found");
    assert_eq!(v["candidates"][0]["code"], "IMAGE_NOT_FOUND");
    // Longer than Linux's 128 KiB cap on one argument.
    let long = format!("{UNAUTHORIZED}{}", " ".repeat(200 * 1024));
    let v = explain_stdin(&long);
    assert_eq!(v["symptom"]["image"]["registry"], "myacr.azurecr.io");
}

/// A small JSON Schema validator covering the keywords schemars emits for these types.
fn validate(root: &Value, schema: &Value, v: &Value, at: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let Some(s) = schema.as_object() else { return errs };
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        let name = r.strip_prefix("#/$defs/").expect("local $ref");
        errs.extend(validate(root, &root["$defs"][name], v, at));
    }
    if let Some(t) = s.get("type") {
        let types: Vec<&str> = match t {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            other => panic!("unknown type {other}"),
        });
        if !ok {
            errs.push(format!("{at}: {v} is not {types:?}"));
            return errs;
        }
    }
    if let Some(c) = s.get("const")
        && c != v
    {
        errs.push(format!("{at}: {v} is not {c}"));
    }
    if let Some(Value::Array(e)) = s.get("enum")
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} is not one of {e:?}"));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = s.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            errs.push(format!("{at}: {n} < {min}"));
        }
        if let Some(max) = s.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            errs.push(format!("{at}: {n} > {max}"));
        }
    }
    if let Some(Value::Array(req)) = s.get("required") {
        for r in req.iter().filter_map(Value::as_str) {
            if v.get(r).is_none() {
                errs.push(format!("{at}: missing required `{r}`"));
            }
        }
    }
    if let Some(obj) = v.as_object() {
        let props = s.get("properties").and_then(Value::as_object);
        for (k, val) in obj {
            match props.and_then(|p| p.get(k)) {
                Some(ps) => errs.extend(validate(root, ps, val, &format!("{at}.{k}"))),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!("{at}: unexpected `{k}`")),
                    Some(ap @ Value::Object(_)) => errs.extend(validate(root, ap, val, &format!("{at}.{k}"))),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(arr)) = (s.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            errs.extend(validate(root, items, item, &format!("{at}[{i}]")));
        }
    }
    if let Some(Value::Array(one)) = s.get("oneOf") {
        let n = one.iter().filter(|o| validate(root, o, v, at).is_empty()).count();
        if n != 1 {
            errs.push(format!("{at}: {v} matches {n} of oneOf"));
        }
    }
    if let Some(Value::Array(any)) = s.get("anyOf")
        && !any.iter().any(|o| validate(root, o, v, at).is_empty())
    {
        errs.push(format!("{at}: {v} matches none of anyOf"));
    }
    errs
}
