//! `acr-credential-provider CLOUD_CONFIG_PATH [--registry-mirror=SRC:DST,...]`: reads a
//! `CredentialProviderRequest` on stdin and writes the `CredentialProviderResponse` on stdout.

use std::io::{Read, Write};
use std::process::ExitCode;

use acr_credential_provider::client::ClientSettings;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut stdin = String::new();
    let result = std::io::stdin()
        .read_to_string(&mut stdin)
        .map_err(|e| acr_credential_provider::ProviderError::Request(format!("cannot read stdin: {e}")))
        .and_then(|_| ClientSettings::from_env())
        .and_then(|settings| acr_credential_provider::run(&args, &stdin, settings));
    match result {
        Ok(json) => {
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{json}").and_then(|()| out.flush()).is_err() {
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("Error running acr credential provider: {err}");
            ExitCode::FAILURE
        }
    }
}
