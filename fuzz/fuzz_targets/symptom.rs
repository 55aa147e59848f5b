//! Any text a person pastes or the kubelet writes: the symptom parser, the image reference
//! parser and `explain`'s ranking must answer it without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let symptom = pulldoctor::symptom::Symptom::parse(&text);
    let _ = symptom.class;
    let _ = pulldoctor::symptom::ImageRef::parse(&text);
    let explained = pulldoctor::explain::Explanation::of(&text);
    let _ = serde_json::to_string(&explained);
});
