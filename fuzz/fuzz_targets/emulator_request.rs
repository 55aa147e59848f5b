//! What a client sends the emulator: ARM paths and the action they map to, ACR token scopes,
//! `Authorization` headers, JWTs.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pullproof_emulator::parsing;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for method in ["GET", "PUT", "PATCH", "DELETE", "POST", "HEAD"] {
        let _ = parsing::arm_path(&text, method);
        let _ = parsing::arm_action(&text, method);
    }
    let parts: Vec<&str> = text.split('&').collect();
    let _ = parsing::acr_scopes(&parts);
    let _ = parsing::bearer(&text);
    let _ = parsing::jwt_claims(&text);
});
